// Row schemas of a Supavisor tenant (the tenant, its Supavisor settings, its upstream, its users)
// and their mapping to the API's SupavisorTenant, which never carries a password or the CA.
import { z } from "zod";
import type { SupavisorTenant } from "../../gen/qod/v1/supavisor";
import { banHolds, IP_VERSIONS, POOL_MODES, UPSTREAM_TLS_MODES } from "../data-plane";
import type { TenantSettings, User } from "./validate";

export const SupavisorTenantRow = z.object({
  name: z.string(),
  disabled: z.boolean(),
  enforce_ssl: z.boolean(),
  allow_list: z.array(z.string()),
  banned_at: z.number().nullable(),
  ban_reason: z.string().nullable(),
  banned_until: z.number().nullable(),
  id: z.string(),
  require_user: z.boolean(),
  auth_query: z.string().nullable(),
  default_pool_size: z.number(),
  default_max_clients: z.number(),
  client_idle_timeout: z.number(),
  client_heartbeat_interval: z.number(),
  sni_hostname: z.string().nullable(),
  availability_zone: z.string().nullable(),
  feature_flags: z.record(z.unknown()),
  use_jit: z.boolean(),
  jit_api_url: z.string().nullable(),
  inserted_at: z.number(),
  updated_at: z.number(),
  /** The optimistic lock of an update: a PUT writes only if this has not moved since it read. */
  version: z.number(),
  database_id: z.string(),
  db_host: z.string(),
  db_port: z.number(),
  db_database: z.string(),
  upstream_tls: z.enum(UPSTREAM_TLS_MODES),
  upstream_tls_ca: z.string().nullable(),
  ip_version: z.enum(IP_VERSIONS),
  server_version: z.string(),
});
export type SupavisorTenantRow = z.infer<typeof SupavisorTenantRow>;

export const SupavisorUserRow = z.object({
  id: z.string(),
  name: z.string(),
  alias: z.string(),
  size: z.number(),
  is_manager: z.boolean(),
  mode: z.enum(POOL_MODES),
  checkout_timeout_ms: z.number(),
  max_clients: z.number().nullable(),
  /** The password, sealed (src/vault.ts) with the pool's id. */
  secret: z.instanceof(Buffer).nullable(),
  verifier: z.string(),
});
export type SupavisorUserRow = z.infer<typeof SupavisorUserRow>;

/** A stored tenant as settings, the form a request is merged into (passwords stay sealed in the rows). */
export function toSettings(row: SupavisorTenantRow, users: readonly SupavisorUserRow[]): TenantSettings {
  return {
    upstream: { host: row.db_host, port: row.db_port, database: row.db_database, tls: row.upstream_tls, ca: row.upstream_tls_ca, ipVersion: row.ip_version },
    requireUser: row.require_user,
    authQuery: row.auth_query,
    enforceSsl: row.enforce_ssl,
    allowList: row.allow_list,
    defaultPoolSize: row.default_pool_size,
    defaultMaxClients: row.default_max_clients,
    clientIdleTimeout: row.client_idle_timeout,
    clientHeartbeatInterval: row.client_heartbeat_interval,
    sniHostname: row.sni_hostname,
    availabilityZone: row.availability_zone,
    featureFlags: row.feature_flags,
    useJit: row.use_jit,
    jitApiUrl: row.jit_api_url,
    users: users.map(
      (user): User => ({
        dbUser: user.name,
        alias: user.alias,
        password: undefined,
        poolSize: user.size,
        isManager: user.is_manager,
        mode: user.mode,
        checkoutTimeoutMs: user.checkout_timeout_ms,
        maxClients: user.max_clients,
      }),
    ),
  };
}

export function toSupavisorTenant(row: SupavisorTenantRow, users: readonly SupavisorUserRow[], now = Date.now()): SupavisorTenant {
  const banned = banHolds(row.banned_at, row.banned_until, now);
  return {
    id: row.id,
    externalId: row.name,
    dbHost: row.db_host,
    dbPort: row.db_port,
    dbDatabase: row.db_database,
    defaultParameterStatus: row.server_version === "" ? {} : { server_version: row.server_version },
    ipVersion: row.ip_version,
    upstreamSsl: row.upstream_tls !== "disable",
    upstreamVerify: row.upstream_tls === "disable" ? undefined : row.upstream_tls === "verify-full" ? "peer" : "none",
    upstreamTlsCa: undefined, // never returned, as Supavisor
    enforceSsl: row.enforce_ssl,
    requireUser: row.require_user,
    authQuery: row.auth_query ?? undefined,
    defaultPoolSize: row.default_pool_size,
    sniHostname: row.sni_hostname ?? undefined,
    defaultMaxClients: row.default_max_clients,
    clientIdleTimeout: row.client_idle_timeout,
    clientHeartbeatInterval: row.client_heartbeat_interval,
    allowList: row.allow_list,
    availabilityZone: row.availability_zone ?? undefined,
    featureFlags: row.feature_flags,
    useJit: row.use_jit,
    jitApiUrl: row.jit_api_url ?? undefined,
    bannedAt: row.banned_at === null ? undefined : new Date(row.banned_at),
    banReason: row.ban_reason ?? undefined,
    bannedUntil: row.banned_until === null ? undefined : new Date(row.banned_until),
    insertedAt: new Date(row.inserted_at),
    updatedAt: new Date(row.updated_at),
    users: users.map((user) => ({
      dbUserAlias: user.alias,
      dbUser: user.name,
      dbPassword: undefined, // never returned
      poolSize: user.size,
      isManager: user.is_manager,
      modeType: user.mode,
      poolCheckoutTimeout: user.checkout_timeout_ms,
      maxClients: user.max_clients ?? undefined,
    })),
    disabled: row.disabled,
    banned,
  };
}
