// The data plane's picture of the state (src/data-plane.ts EdgeTenant): every tenant with its
// ready pools, each with its upstream and the credentials it logs in with. Built here, from the
// state; the edge applies it and decides nothing else.
import { Client } from "pg";
import type { Logger } from "pino";
import type { DatabasePool } from "slonik";
import type { PgTarget } from "../config";
import type { EdgePool, EdgeTenant } from "../data-plane";
import { effectiveTarget } from "../databases";
import { upstreamClientConfig, type UpstreamAddress } from "../db/upstream";
import type { Vault } from "../vault";
import { listRoutes, listTerminations, type RouteRow } from "./queries";

/** How long an auth_query for an unregistered role may take (the client's handshake waits). */
const AUTH_QUERY_TIMEOUT_MS = 3_000;
const NO_SECRETS = { metastore: {}, objectStore: {} };

export interface RouteDeps {
  pool: DatabasePool;
  vault: Vault;
  /** The shared server: where a provisioned database without a metastore override lives. */
  defaults: PgTarget;
  logger: Logger;
}

/** A tenant's picture, and when it last asked for its sessions to be ended. */
export interface TenantRoutes {
  tenant: EdgeTenant;
  terminatedAt: number | undefined;
}

function addressOf(row: RouteRow): UpstreamAddress {
  if (row.kind === "external") {
    return {
      host: row.metastore.pgHost ?? "",
      port: Number(row.metastore.pgPort),
      database: row.metastore.dbName ?? "",
      tls: row.upstream_tls,
      ca: row.upstream_tls_ca,
      ipVersion: row.ip_version,
    };
  }
  return { host: "", port: 0, database: row.database_name, tls: "disable", ca: null, ipVersion: "auto" };
}

/**
 * The SCRAM verifier of a role a `require_user: false` tenant does not register, through its
 * auth_query run as the manager; undefined when there is none (or it is not SCRAM).
 */
function authQueryOf(address: UpstreamAddress, manager: { user: string; password: string }, query: string, logger: Logger) {
  return async (user: string): Promise<string | undefined> => {
    const client = new Client(await upstreamClientConfig(address, manager.user, manager.password, AUTH_QUERY_TIMEOUT_MS));
    client.on("error", () => {});
    try {
      await client.connect();
      const { rows } = await client.query<Record<string, unknown>>(query, [user]);
      const secret = rows[0] ? Object.values(rows[0])[1] : undefined;
      return typeof secret === "string" && secret.startsWith("SCRAM-SHA-256$") ? secret : undefined;
    } catch (err) {
      logger.info({ code: (err as { code?: string }).code }, "auth_query failed");
      return undefined;
    } finally {
      await client.end().catch(() => {});
    }
  };
}

/** The tenants with pools (every tenant, or just `tenant`), as the data plane sees them. */
export async function loadRoutes(deps: RouteDeps, tenant?: string): Promise<Map<string, TenantRoutes>> {
  const [rows, terminations] = await Promise.all([listRoutes(deps.pool, tenant), listTerminations(deps.pool, tenant)]);
  const terminated = new Map(terminations.map((t) => [t.name, t.terminated_at]));
  const byTenant = new Map<string, TenantRoutes>();
  for (const row of rows) {
    let entry = byTenant.get(row.tenant);
    if (!entry) {
      entry = {
        tenant: {
          name: row.tenant,
          disabled: row.tenant_disabled,
          ...(row.banned_at !== null && { ban: { reason: row.ban_reason ?? "", ...(row.banned_until !== null && { until: row.banned_until }) } }),
          enforceSsl: row.enforce_ssl,
          allowList: row.allow_list,
          users: new Map<string, EdgePool>(),
        },
        terminatedAt: terminated.get(row.tenant),
      };
      byTenant.set(row.tenant, entry);
    }
    // A pool whose role is being made or dropped, or without credentials, is not routed.
    if (row.role_state !== "ready" || row.secret === null || row.verifier === "") continue;
    const password = deps.vault.open(row.secret, row.id);
    const address = addressOf(row);
    const server = row.kind === "external" ? address : { ...address, ...pick(effectiveTarget(deps.defaults, row.metastore, NO_SECRETS)) };
    const pool: EdgePool = {
      id: row.id,
      tenant: row.tenant,
      name: row.name,
      user: row.name,
      database: server.database,
      disabled: row.pool_disabled,
      verifier: row.verifier,
      maxClients: row.max_clients,
      poolSize: row.size,
      upstream: {
        host: server.host,
        port: server.port,
        database: server.database,
        user: row.upstream_user,
        password,
        tls: server.ca === null ? { mode: server.tls } : { mode: server.tls, ca: server.ca },
        ipVersion: server.ipVersion,
      },
    };
    (entry.tenant.users as Map<string, EdgePool>).set(pool.user, pool);
    if (row.require_user === false && row.is_manager && row.auth_query) {
      entry.tenant = { ...entry.tenant, authQuery: authQueryOf(server, { user: row.upstream_user, password }, row.auth_query, deps.logger) };
    }
  }
  return byTenant;
}

const pick = (target: PgTarget) => ({ host: target.host, port: target.port });
