// All SQL of the tenants domain. Each query takes the connection first, so the handler owns the
// transaction. A change is one statement that also writes its audit row (db/audit.ts), so it is
// atomic without a transaction.
import type { CommonQueryMethods, IdentifierSqlToken } from "slonik";
import { z } from "zod";
import { auditRecord, withAuditRow, type Actor } from "../db/audit";
import { sql } from "../db/sql";
import type { OneStatement } from "../db/transaction";
import type { Page } from "../pagination";
import { TenantRow, type AuthProvider } from "./rows";

/** Tenant columns of the relation `t`, without its pools. */
const ownColumns = (t: IdentifierSqlToken) =>
  sql.fragment`${t}.name, ${t}.display_name, ${t}.disabled, ${t}.auth_provider, ${t}.auth_config, ${t}.created_at, ${t}.updated_at,
    ${t}.banned_at, ${t}.ban_reason, ${t}.banned_until`;

/** Tenant columns of the relation `t`, plus its pool names. */
const tenantColumns = (t: IdentifierSqlToken) =>
  sql.fragment`${ownColumns(t)}, ARRAY(SELECT p.name FROM pools p WHERE p.tenant = ${t}.name ORDER BY p.name) AS pools`;

const T = sql.identifier(["t"]);

export interface NewTenant {
  name: string;
  displayName: string;
  authProvider: AuthProvider;
  authConfig: Record<string, string>;
}

/**
 * The tenant and its audit row, through migration 0007's create_tenant function (its plans are
 * kept per session). A new tenant has no pools yet: the list is a literal, not a subquery.
 */
export function insertTenant(db: OneStatement, tenant: NewTenant, actor: Actor): Promise<TenantRow> {
  const audit = auditRecord(actor, { action: "tenant.create", tenant: tenant.name, details: { authProvider: tenant.authProvider } });
  return db.one(sql.type(TenantRow)`
    SELECT ${ownColumns(T)}, '{}'::text[] AS pools
    FROM create_tenant(${tenant.name}, ${tenant.displayName}, ${tenant.authProvider}, ${sql.jsonb(tenant.authConfig)}, ${audit}) t`);
}

export function findTenantByName(db: CommonQueryMethods, name: string): Promise<TenantRow | null> {
  return db.maybeOne(sql.type(TenantRow)`SELECT ${tenantColumns(T)} FROM tenants t WHERE t.name = ${name}`);
}

/** One page of tenants ordered by name; `visible` limits it to those names when given. */
export function listTenants(db: CommonQueryMethods, page: Page, visible: readonly string[] | undefined): Promise<readonly TenantRow[]> {
  return db.any(sql.type(TenantRow)`
    SELECT ${tenantColumns(T)} FROM tenants t
    WHERE ${sql.join(
      [
        page.after === undefined ? sql.fragment`TRUE` : sql.fragment`t.name > ${page.after}`,
        visible === undefined ? sql.fragment`TRUE` : sql.fragment`t.name = ANY(${sql.array(visible, "text")})`,
      ],
      sql.fragment` AND `,
    )}
    ORDER BY t.name
    LIMIT ${page.limit + 1}`);
}

export function updateTenantDisabled(db: OneStatement, name: string, disabled: boolean, actor: Actor): Promise<TenantRow | null> {
  return db.maybeOne(sql.type(TenantRow)`${withAuditRow(
    actor,
    { action: "tenant.setDisabled", tenant: name, details: { disabled } },
    sql.fragment`UPDATE tenants SET disabled = ${disabled}, updated_at = now() WHERE name = ${name} RETURNING *`,
    (changed) => sql.fragment`SELECT ${tenantColumns(changed)} FROM ${changed}`,
  )}`);
}

export function updateTenantAuth(
  db: OneStatement,
  name: string,
  authProvider: AuthProvider,
  authConfig: Record<string, string>,
  actor: Actor,
): Promise<TenantRow | null> {
  return db.maybeOne(sql.type(TenantRow)`${withAuditRow(
    actor,
    { action: "tenant.setAuth", tenant: name, details: { authProvider } },
    sql.fragment`
      UPDATE tenants SET auth_provider = ${authProvider}, auth_config = ${sql.jsonb(authConfig)}, updated_at = now()
      WHERE name = ${name} RETURNING *`,
    (changed) => sql.fragment`SELECT ${tenantColumns(changed)} FROM ${changed}`,
  )}`);
}

/**
 * Deletes a tenant; its users and database rows go by cascade. Pools reference the tenant
 * without cascade, so a tenant with pools fails on the constraint (mapped to `has_pools`).
 */
export async function deleteTenant(db: OneStatement, name: string, actor: Actor): Promise<boolean> {
  const deleted = await db.maybeOne(sql.type(z.object({ name: z.string() }))`${withAuditRow(
    actor,
    { action: "tenant.delete", tenant: name },
    sql.fragment`DELETE FROM tenants WHERE name = ${name} RETURNING name`,
    (changed) => sql.fragment`SELECT name FROM ${changed}`,
  )}`);
  return deleted !== null;
}
