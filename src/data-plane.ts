// The data plane's vocabulary (SPEC §10): the closed sets the state stores and the edge applies.

/** A session's pooling: per transaction (port 6543) or for the whole session (port 5432). */
export const POOL_MODES = ["transaction", "session"] as const;
export type PoolMode = (typeof POOL_MODES)[number];

/** How the pooler reaches an upstream: no TLS, TLS without verification, or TLS verified against a CA and the host name. */
export const UPSTREAM_TLS_MODES = ["disable", "require", "verify-full"] as const;
export type UpstreamTlsMode = (typeof UPSTREAM_TLS_MODES)[number];

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
