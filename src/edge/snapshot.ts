// What the edge derives from the snapshot it is told (src/data-plane.ts): whether a ban holds, and
// the names of engine routes and TLS profiles.
import { createHash } from "node:crypto";
import { banHolds, type EdgeTenant, type EdgeUpstream, type PoolMode } from "../data-plane";

export { POOL_MODES, type EdgePool, type EdgeTenant, type EdgeUpstream, type PoolMode, type UpstreamTlsMode } from "../data-plane";

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
