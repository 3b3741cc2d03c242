// All SQL of the Supavisor domain. A Supavisor tenant is four kinds of rows: the tenant (with the
// data plane's settings every tenant has), its supavisor_tenants row, its upstream (a databases row
// of kind `external`), and its users (pools on that upstream). A PUT writes them in one
// transaction; the supavisor_tenants row carries the audit row and the optimistic lock (`version`).
import type { CommonQueryMethods } from "slonik";
import { z } from "zod";
import { withAuditRow, type Actor, type AuditEntry } from "../db/audit";
import { sql } from "../db/sql";
import type { OneStatement } from "../db/transaction";
import { SupavisorTenantRow, SupavisorUserRow } from "./rows";
import type { TenantSettings, Upstream } from "./validate";

/** The upstream row's suffix: its full name is `<tenant>_upstream`. */
export const UPSTREAM_SUFFIX = "upstream";

const Name = z.object({ name: z.string() });
const Id = z.object({ id: z.string() });

export function findSupavisorTenant(db: CommonQueryMethods, name: string): Promise<SupavisorTenantRow | null> {
  return db.maybeOne(sql.type(SupavisorTenantRow)`
    SELECT t.name, t.disabled, t.enforce_ssl, t.allow_list, t.banned_at, t.ban_reason, t.banned_until,
           s.id::text, s.require_user, s.auth_query, s.default_pool_size, s.default_max_clients, s.client_idle_timeout,
           s.client_heartbeat_interval, s.sni_hostname, s.availability_zone, s.feature_flags, s.use_jit, s.jit_api_url,
           s.created_at AS inserted_at, s.updated_at, s.version,
           d.id AS database_id, d.metastore->>'pgHost' AS db_host, (d.metastore->>'pgPort')::int AS db_port,
           d.metastore->>'dbName' AS db_database, d.upstream_tls, d.upstream_tls_ca, d.ip_version, d.server_version
    FROM supavisor_tenants s
    JOIN tenants t ON t.name = s.tenant
    JOIN databases d ON d.id = s.database_id
    WHERE s.tenant = ${name}`);
}

export function listSupavisorUsers(db: CommonQueryMethods, databaseId: string): Promise<readonly SupavisorUserRow[]> {
  return db.any(sql.type(SupavisorUserRow)`
    SELECT id, name, alias, size, is_manager, mode, checkout_timeout_ms, max_clients, secret, verifier
    FROM pools WHERE database_id = ${databaseId} ORDER BY name`);
}

/** A new tenant, registered through Supavisor's API (display name = name, users by password). */
export async function insertTenant(db: OneStatement, name: string, settings: TenantSettings): Promise<void> {
  await db.query(sql.typeAlias("void")`
    INSERT INTO tenants (name, display_name, enforce_ssl, allow_list)
    VALUES (${name}, ${name}, ${settings.enforceSsl}, ${sql.array(settings.allowList, "text")})`);
}

/** The data plane's settings of an existing tenant; false when it is gone. */
export async function updateTenantAccess(db: OneStatement, name: string, settings: TenantSettings): Promise<boolean> {
  const row = await db.maybeOne(sql.type(Name)`
    UPDATE tenants SET enforce_ssl = ${settings.enforceSsl}, allow_list = ${sql.array(settings.allowList, "text")}, updated_at = now()
    WHERE name = ${name} RETURNING name`);
  return row !== null;
}

const metastore = (upstream: Upstream) => sql.jsonb({ pgHost: upstream.host, pgPort: String(upstream.port), dbName: upstream.database });

/** Registers the tenant's upstream (a databases row of kind `external`, READY: nothing to provision). */
export async function insertUpstream(db: OneStatement, id: string, tenant: string, upstream: Upstream, serverVersion: string): Promise<void> {
  await db.query(sql.typeAlias("void")`
    INSERT INTO databases (id, tenant, name, suffix, kind, status, metastore, upstream_tls, upstream_tls_ca, ip_version, server_version)
    VALUES (${id}, ${tenant}, ${`${tenant}_${UPSTREAM_SUFFIX}`}, ${UPSTREAM_SUFFIX}, 'external', 'READY', ${metastore(upstream)},
            ${upstream.tls}, ${upstream.ca}, ${upstream.ipVersion}, ${serverVersion})`);
}

/** `serverVersion` empty keeps the one stored (the credentials were not tried again). */
export async function updateUpstream(db: OneStatement, id: string, upstream: Upstream, serverVersion: string): Promise<void> {
  await db.query(sql.typeAlias("void")`
    UPDATE databases
    SET metastore = ${metastore(upstream)}, upstream_tls = ${upstream.tls}, upstream_tls_ca = ${upstream.ca},
        ip_version = ${upstream.ipVersion}, server_version = coalesce(nullif(${serverVersion}, ''), server_version), updated_at = now()
    WHERE id = ${id}`);
}

const settingsValues = (s: TenantSettings) => ({
  requireUser: s.requireUser,
  authQuery: s.authQuery,
  defaultPoolSize: s.defaultPoolSize,
  defaultMaxClients: s.defaultMaxClients,
  clientIdleTimeout: s.clientIdleTimeout,
  clientHeartbeatInterval: s.clientHeartbeatInterval,
  sniHostname: s.sniHostname,
  availabilityZone: s.availabilityZone,
  featureFlags: sql.jsonb(s.featureFlags as never),
  useJit: s.useJit,
  jitApiUrl: s.jitApiUrl,
});

export async function insertSupavisorSettings(db: OneStatement, tenant: string, databaseId: string, s: TenantSettings, actor: Actor, audit: AuditEntry): Promise<void> {
  const v = settingsValues(s);
  await db.one(sql.type(Name)`${withAuditRow(
    actor,
    audit,
    sql.fragment`
      INSERT INTO supavisor_tenants (tenant, database_id, require_user, auth_query, default_pool_size, default_max_clients,
        client_idle_timeout, client_heartbeat_interval, sni_hostname, availability_zone, feature_flags, use_jit, jit_api_url)
      VALUES (${tenant}, ${databaseId}, ${v.requireUser}, ${v.authQuery}, ${v.defaultPoolSize}, ${v.defaultMaxClients},
        ${v.clientIdleTimeout}, ${v.clientHeartbeatInterval}, ${v.sniHostname}, ${v.availabilityZone}, ${v.featureFlags}, ${v.useJit}, ${v.jitApiUrl})
      RETURNING tenant AS name`,
    (changed) => sql.fragment`SELECT name FROM ${changed}`,
  )}`);
}

/** Writes the settings if the row is still at `version`; false when another write came first. */
export async function updateSupavisorSettings(
  db: OneStatement,
  tenant: string,
  version: number,
  s: TenantSettings,
  actor: Actor,
  audit: AuditEntry,
): Promise<boolean> {
  const v = settingsValues(s);
  const row = await db.maybeOne(sql.type(Name)`${withAuditRow(
    actor,
    audit,
    sql.fragment`
      UPDATE supavisor_tenants
      SET require_user = ${v.requireUser}, auth_query = ${v.authQuery}, default_pool_size = ${v.defaultPoolSize},
          default_max_clients = ${v.defaultMaxClients}, client_idle_timeout = ${v.clientIdleTimeout},
          client_heartbeat_interval = ${v.clientHeartbeatInterval}, sni_hostname = ${v.sniHostname},
          availability_zone = ${v.availabilityZone}, feature_flags = ${v.featureFlags}, use_jit = ${v.useJit},
          jit_api_url = ${v.jitApiUrl}, version = version + 1, updated_at = now()
      WHERE tenant = ${tenant} AND version = ${version}
      RETURNING tenant AS name`,
    (changed) => sql.fragment`SELECT name FROM ${changed}`,
  )}`);
  return row !== null;
}

/** A user as written: its password already sealed (bound to `id`) and its verifier derived. */
export interface UserWrite {
  id: string;
  dbUser: string;
  alias: string;
  secret: Buffer | null;
  verifier: string;
  size: number;
  isManager: boolean;
  mode: string;
  checkoutTimeoutMs: number;
  maxClients: number | null;
}

/** Users no longer in the set go. */
export async function deleteUsersExcept(db: OneStatement, databaseId: string, keep: readonly string[]): Promise<void> {
  await db.query(sql.typeAlias("void")`DELETE FROM pools WHERE database_id = ${databaseId} AND NOT (name = ANY(${sql.array(keep, "text")}))`);
}

/**
 * Inserts the user, or updates the tenant's user of that name on this upstream. False when the
 * name belongs to another pool of the tenant (on another database), which is left alone.
 */
export async function upsertUser(db: OneStatement, tenant: string, databaseId: string, u: UserWrite): Promise<boolean> {
  const row = await db.maybeOne(sql.type(Id)`
    INSERT INTO pools (id, tenant, database_id, name, size, upstream_user, secret, verifier, mode, max_clients,
                       checkout_timeout_ms, is_manager, alias)
    VALUES (${u.id}, ${tenant}, ${databaseId}, ${u.dbUser}, ${u.size}, ${u.dbUser}, ${u.secret === null ? null : sql.binary(u.secret)},
            ${u.verifier}, ${u.mode}, ${u.maxClients}, ${u.checkoutTimeoutMs}, ${u.isManager}, ${u.alias})
    ON CONFLICT ON CONSTRAINT pools_tenant_name_key DO UPDATE
    SET size = EXCLUDED.size, upstream_user = EXCLUDED.upstream_user,
        secret = coalesce(EXCLUDED.secret, pools.secret), verifier = CASE WHEN EXCLUDED.secret IS NULL THEN pools.verifier ELSE EXCLUDED.verifier END,
        mode = EXCLUDED.mode, max_clients = EXCLUDED.max_clients, checkout_timeout_ms = EXCLUDED.checkout_timeout_ms,
        is_manager = EXCLUDED.is_manager, alias = EXCLUDED.alias, updated_at = now()
    WHERE pools.database_id = EXCLUDED.database_id
    RETURNING id`);
  return row !== null;
}

/** Bans (`ban` given) or unbans a Supavisor tenant; false when there is none of that name. */
export async function setBan(db: OneStatement, tenant: string, ban: { reason: string; until: number | null } | undefined, actor: Actor): Promise<boolean> {
  const change = ban
    ? sql.fragment`banned_at = now(), ban_reason = ${ban.reason}, banned_until = ${ban.until === null ? null : sql.timestamp(new Date(ban.until))}`
    : sql.fragment`banned_at = NULL, ban_reason = NULL, banned_until = NULL`;
  const row = await db.maybeOne(sql.type(Name)`${withAuditRow(
    actor,
    { action: ban ? "supavisor.ban" : "supavisor.unban", tenant, details: ban ? { until: ban.until } : {} },
    sql.fragment`
      UPDATE tenants SET ${change}, updated_at = now()
      WHERE name = ${tenant} AND EXISTS (SELECT 1 FROM supavisor_tenants s WHERE s.tenant = ${tenant})
      RETURNING name`,
    (changed) => sql.fragment`SELECT name FROM ${changed}`,
  )}`);
  return row !== null;
}

/** Asks every replica's data plane to end the tenant's sessions opened before now. */
export async function requestTermination(db: OneStatement, tenant: string, actor: Actor): Promise<boolean> {
  const row = await db.maybeOne(sql.type(Name)`${withAuditRow(
    actor,
    { action: "supavisor.terminate", tenant },
    sql.fragment`
      UPDATE tenants SET terminated_at = now()
      WHERE name = ${tenant} AND EXISTS (SELECT 1 FROM supavisor_tenants s WHERE s.tenant = ${tenant})
      RETURNING name`,
    (changed) => sql.fragment`SELECT name FROM ${changed}`,
  )}`);
  return row !== null;
}

/** Deletes the users (pools) of the tenant's upstream. */
export async function deleteUsers(db: OneStatement, databaseId: string): Promise<void> {
  await db.query(sql.typeAlias("void")`DELETE FROM pools WHERE database_id = ${databaseId}`);
}

/**
 * Deletes the tenant: its Supavisor settings, its upstream's row, its users (QOD's) and database
 * rows go by cascade. Its other pools (on provisioned databases) refuse it: `has_pools`.
 */
export async function deleteTenant(db: OneStatement, tenant: string, actor: Actor): Promise<boolean> {
  const row = await db.maybeOne(sql.type(Name)`${withAuditRow(
    actor,
    { action: "supavisor.delete", tenant },
    sql.fragment`DELETE FROM tenants WHERE name = ${tenant} RETURNING name`,
    (changed) => sql.fragment`SELECT name FROM ${changed}`,
  )}`);
  return row !== null;
}

/** New credentials of the manager user (its pool is renamed to the new user). */
export async function updateManager(
  db: OneStatement,
  tenant: string,
  poolId: string,
  credentials: { dbUser: string; secret: Buffer; verifier: string },
  actor: Actor,
): Promise<boolean> {
  const row = await db.maybeOne(sql.type(Id)`${withAuditRow(
    actor,
    { action: "supavisor.credentials", tenant, target: credentials.dbUser },
    sql.fragment`
      UPDATE pools SET name = ${credentials.dbUser}, upstream_user = ${credentials.dbUser}, secret = ${sql.binary(credentials.secret)},
                       verifier = ${credentials.verifier}, updated_at = now()
      WHERE id = ${poolId} RETURNING id`,
    (changed) => sql.fragment`SELECT id FROM ${changed}`,
  )}`);
  return row !== null;
}

/** Whether the state database answers (SupavisorHealth). */
export async function stateAnswers(db: OneStatement): Promise<boolean> {
  return (await db.one(sql.type(z.object({ ok: z.literal(1) }))`SELECT 1 AS ok`)).ok === 1;
}
