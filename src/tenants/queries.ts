// All SQL of the tenants domain. Each query takes the connection first, so the handler owns the
// transaction. A change is one statement that also writes its audit row, so it is atomic
// without a transaction: updates and deletes in a data-modifying CTE (`audit`, from
// audit/queries.ts auditInsert), the create in migration 0005's create_tenant function.
import type { CommonQueryMethods, FragmentSqlToken } from "slonik";
import { z } from "zod";
import { sql } from "../db/sql";
import type { Page } from "../pagination";
import { TenantRow } from "./rows";

/** Tenant columns, for a relation aliased `t`, without its pools. */
const ownColumns = sql.fragment`t.name, t.display_name, t.disabled, t.auth_provider, t.auth_config, t.created_at, t.updated_at`;

/** Tenant columns plus its pool names, for a relation aliased `t`. */
const tenantColumns = sql.fragment`${ownColumns}, ARRAY(SELECT p.name FROM pools p WHERE p.tenant = t.name ORDER BY p.name) AS pools`;

export interface NewTenant {
  name: string;
  displayName: string;
  authProvider: string;
  authConfig: Record<string, string>;
}

/** Writes `audit` once per row of the CTE `t`, the changed tenant. */
type Audit = (from: "t") => FragmentSqlToken;

/** Who creates a tenant, for its audit row. */
export interface Creator {
  actor: string;
  requestId: string;
  details: Record<string, unknown>;
}

/**
 * The tenant and its audit row, through migration 0005's create_tenant function (its plans are
 * kept per session). A new tenant has no pools yet: the list is a literal, not a subquery.
 */
export function insertTenant(db: CommonQueryMethods, tenant: NewTenant, by: Creator): Promise<TenantRow> {
  return db.one(sql.type(TenantRow)`
    SELECT ${ownColumns}, '{}'::text[] AS pools
    FROM create_tenant(${tenant.name}, ${tenant.displayName}, ${tenant.authProvider}, ${sql.jsonb(tenant.authConfig)},
                       ${by.actor}, ${by.requestId}, ${sql.jsonb(by.details as never)}) t`);
}

export function findTenantByName(db: CommonQueryMethods, name: string): Promise<TenantRow | null> {
  return db.maybeOne(sql.type(TenantRow)`SELECT ${tenantColumns} FROM tenants t WHERE t.name = ${name}`);
}

/** One page of tenants ordered by name; `visible` limits it to those names when given. */
export function listTenants(db: CommonQueryMethods, page: Page, visible: readonly string[] | undefined): Promise<readonly TenantRow[]> {
  return db.any(sql.type(TenantRow)`
    SELECT ${tenantColumns} FROM tenants t
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

export function updateTenantDisabled(db: CommonQueryMethods, name: string, disabled: boolean, audit: Audit): Promise<TenantRow | null> {
  return db.maybeOne(sql.type(TenantRow)`
    WITH t AS (
      UPDATE tenants SET disabled = ${disabled}, updated_at = now() WHERE name = ${name} RETURNING *),
    audit AS (${audit("t")})
    SELECT ${tenantColumns} FROM t`);
}

export function updateTenantAuth(
  db: CommonQueryMethods,
  name: string,
  authProvider: string,
  authConfig: Record<string, string>,
  audit: Audit,
): Promise<TenantRow | null> {
  return db.maybeOne(sql.type(TenantRow)`
    WITH t AS (
      UPDATE tenants SET auth_provider = ${authProvider}, auth_config = ${sql.jsonb(authConfig)}, updated_at = now()
      WHERE name = ${name} RETURNING *),
    audit AS (${audit("t")})
    SELECT ${tenantColumns} FROM t`);
}

/**
 * Deletes a tenant; its users and database rows go by cascade. Pools reference the tenant
 * without cascade, so a tenant with pools fails on the constraint (mapped to `has_pools`).
 */
export async function deleteTenant(db: CommonQueryMethods, name: string, audit: Audit): Promise<boolean> {
  const deleted = await db.maybeOne(sql.type(z.object({ name: z.string() }))`
    WITH t AS (DELETE FROM tenants WHERE name = ${name} RETURNING name),
    audit AS (${audit("t")})
    SELECT name FROM t`);
  return deleted !== null;
}
