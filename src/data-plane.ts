// The contract between the control plane and the data plane (SPEC §10): the closed sets the state
// stores and the edge applies, and the snapshot of the state the edge is handed. The edge decides
// nothing beyond applying it (STYLE §2.4).

/** A session's pooling: per transaction (port 6543) or for the whole session (port 5432). */
export const POOL_MODES = ["transaction", "session"] as const;
export type PoolMode = (typeof POOL_MODES)[number];

/** How the pooler reaches an upstream: no TLS, TLS without verification, or TLS verified against a CA and the host name. */
export const UPSTREAM_TLS_MODES = ["disable", "require", "verify-full"] as const;
export type UpstreamTlsMode = (typeof UPSTREAM_TLS_MODES)[number];

/** Where a pool's Postgres role stands (pools made by CreatePool; Supavisor's users are always ready). */
export const ROLE_STATES = ["creating", "ready", "dropping"] as const;
export type RoleState = (typeof ROLE_STATES)[number];

/** How an upstream's host name is resolved (Supavisor's ip_version). */
export const IP_VERSIONS = ["auto", "v4", "v6"] as const;
export type IpVersion = (typeof IP_VERSIONS)[number];

/**
 * Whether a ban recorded at `bannedAt` holds at `now` (epoch ms): until `bannedUntil` inclusive, as
 * Supavisor's check, or for good without it.
 */
export function banHolds(bannedAt: number | null | undefined, bannedUntil: number | null | undefined, now: number): boolean {
  return bannedAt !== null && bannedAt !== undefined && (bannedUntil === null || bannedUntil === undefined || now <= bannedUntil);
}

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
