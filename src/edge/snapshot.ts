// What the edge is told: a plain snapshot of the control plane's state. The edge decides nothing
// beyond applying it (STYLE §2.4). Also the names derived from it: engine routes and TLS profiles.
import { createHash } from "node:crypto";
import { banHolds, type IpVersion, type PoolMode, type UpstreamTlsMode } from "../data-plane";

export { POOL_MODES, type PoolMode, type UpstreamTlsMode } from "../data-plane";

export interface EdgeUpstream {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
  /** `require` encrypts without verifying; `verify-full` checks the chain against `ca` (PEM) and the host name. */
  tls: { mode: UpstreamTlsMode; ca?: string };
  /** `v4`/`v6`: resolve `host` to that family when the route is written (Supavisor's ip_version). */
  ipVersion?: IpVersion;
}

export interface EdgePool {
  /** Stable across changes: the engine routes are named after it. */
  id: string;
  tenant: string;
  name: string;
  /** The client user name (before `.<tenant>`). */
  user: string;
  /** The database name the client must ask for. */
  database: string;
  disabled: boolean;
  /** SCRAM-SHA-256 verifier in pg_authid's form (see src/scram.ts). */
  verifier: string;
  /** Sessions open at once through this pool, both ports together. */
  maxClients: number;
  /** Server connections per mode (each mode's route gets this pool_size). */
  poolSize: number;
  upstream: EdgeUpstream;
}

export interface EdgeTenant {
  name: string;
  disabled: boolean;
  /** Active while `until` (epoch ms) has not passed; without `until`, until unbanned. */
  ban?: { reason: string; until?: number };
  enforceSsl: boolean;
  /** CIDRs the clients must come from; empty = anywhere. */
  allowList: readonly string[];
  /** Pools by client user name. */
  users: ReadonlyMap<string, EdgePool>;
  /** Tenants with require_user:false: the SCRAM verifier of a role that is not a registered user. */
  authQuery?: (user: string) => Promise<string | undefined>;
}

/** Banned now? At exactly `until` the ban still holds (as Supavisor's check). */
export const isBanned = (tenant: EdgeTenant, now: number): boolean => tenant.ban !== undefined && banHolds(0, tenant.ban.until, now);

/** What routeName() makes, and nothing else: route names are spliced into admin console commands. */
export const ROUTE_NAME = /^q[0-9a-f]{24}_(tx|se)$/;

/** The engine route (PgBouncer database name) of a pool in a mode: short, fixed charset, stable. */
export function routeName(poolId: string, mode: PoolMode): string {
  const digest = createHash("sha256").update(poolId).digest("hex").slice(0, 24);
  return `q${digest}_${mode === "transaction" ? "tx" : "se"}`;
}

/** Upstream TLS settings are global in PgBouncer 1.18: routes that share them share an engine. */
export function tlsProfileKey(tls: EdgeUpstream["tls"]): string {
  if (tls.mode !== "verify-full") return tls.mode;
  return `verify-full-${createHash("sha256").update(tls.ca ?? "").digest("hex").slice(0, 16)}`;
}
