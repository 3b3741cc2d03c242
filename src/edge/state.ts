// The edge's compiled picture of a snapshot (allow lists parsed, verifiers parsed, engine routes
// written out), and what moving from one picture to the next means for open sessions and engines.
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import type { Logger } from "pino";
import { parseScramVerifier, type ScramVerifier } from "../scram";
import { compileAllowList, type AllowList } from "./allow-list";
import { addFigures, emptyFigures, type RouteFigures } from "./engine";
import type { ProfileRoutes } from "./engines";
import { fatal, type Fatal } from "./fatal";
import { RouteConfigError, routeLine } from "./pgbouncer-config";
import type { Session } from "./session";
import { isBanned, POOL_MODES, routeName, tlsProfileKey, type EdgePool, type EdgeTenant, type EdgeUpstream, type PoolMode } from "./snapshot";

export interface TenantEntry {
  tenant: EdgeTenant;
  allowList: AllowList;
  /** By client user name. */
  pools: Map<string, PoolEntry>;
}

export interface PoolEntry {
  pool: EdgePool;
  /** Undefined when the stored verifier is not one: every login then fails as a wrong password. */
  verifier: ScramVerifier | undefined;
  /** The TLS profile, i.e. the engine the pool's routes live on. */
  profile: string;
  /** Its ini line per mode; absent when the pool cannot be routed (then `unusable` says why). */
  lines: Record<PoolMode, string> | undefined;
  unusable: Fatal | undefined;
  /** Its open sessions; the same set is carried to the next picture while the pool exists. */
  sessions: Set<Session>;
}

export interface EdgeState {
  tenants: ReadonlyMap<string, TenantEntry>;
  /** By pool id. */
  pools: ReadonlyMap<string, PoolEntry>;
}

export const emptyState = (): EdgeState => ({ tenants: new Map(), pools: new Map() });

/** Compiles a snapshot. Host names of pools with ipVersion v4/v6 are resolved here (one lookup per name). */
export async function compileState(list: readonly EdgeTenant[], log: Logger): Promise<EdgeState> {
  const tenants = new Map<string, TenantEntry>();
  const pools = new Map<string, PoolEntry>();
  const resolved = new Map<string, Promise<string>>();
  await Promise.all(
    list.map(async (tenant) => {
      const allowList = compileAllowList(tenant.allowList);
      if (allowList.invalid.length > 0) log.warn({ tenant: tenant.name, entries: allowList.invalid }, "allow list entries that are not CIDRs allow nothing");
      const entry: TenantEntry = { tenant, allowList, pools: new Map() };
      tenants.set(tenant.name, entry);
      for (const [user, pool] of tenant.users) {
        const compiled = await compilePool(pool, resolved, log);
        entry.pools.set(user, compiled);
        pools.set(pool.id, compiled);
      }
    }),
  );
  return { tenants, pools };
}

async function compilePool(pool: EdgePool, resolved: Map<string, Promise<string>>, log: Logger): Promise<PoolEntry> {
  const verifier = parseScramVerifier(pool.verifier);
  if (!verifier) log.warn({ pool: pool.id, tenant: pool.tenant }, "pool has no valid SCRAM verifier: its logins fail");
  const entry: PoolEntry = { pool, verifier, profile: tlsProfileKey(pool.upstream.tls), lines: undefined, unusable: undefined, sessions: new Set() };
  try {
    const host = await resolveHost(pool.upstream, resolved);
    const line = (mode: PoolMode) => routeLine({ name: routeName(pool.id, mode), mode, poolSize: pool.poolSize, upstream: { ...pool.upstream, host } });
    entry.lines = { transaction: line("transaction"), session: line("session") };
  } catch (err) {
    const configError = err instanceof RouteConfigError;
    entry.unusable = configError ? fatal.upstreamMisconfigured(pool.name, pool.tenant) : fatal.upstreamUnavailable();
    // RouteConfigError messages name the field, never its value.
    log.warn({ pool: pool.id, tenant: pool.tenant, reason: configError ? err.message : "upstream host did not resolve" }, "pool cannot be routed");
  }
  return entry;
}

/**
 * The host the engine connects to. With ipVersion v4/v6 a host name is resolved to that family
 * here (PgBouncer would pick either); not for verify-full, which must check the name itself.
 */
function resolveHost(upstream: EdgeUpstream, resolved: Map<string, Promise<string>>): Promise<string> | string {
  const { host, ipVersion = "auto", tls } = upstream;
  if (ipVersion === "auto" || isIP(host) !== 0 || host.startsWith("/") || tls.mode === "verify-full") return host;
  const key = `${ipVersion}\0${host}`;
  let address = resolved.get(key);
  if (!address) {
    address = lookup(host, { family: ipVersion === "v4" ? 4 : 6 }).then((r) => r.address);
    resolved.set(key, address);
  }
  return address;
}

export interface StateChange {
  /** Open sessions that must end, and the FATAL each gets. */
  ending: Array<readonly [Session, Fatal]>;
  /** Pools of tenants banned by this change: their server connections are dropped. */
  newlyBanned: PoolEntry[];
}

/**
 * What moving from `before` to `after` means for open sessions: a removed pool's end, a pool whose
 * routes move to another engine (or can no longer be routed) ends its sessions, a newly banned
 * tenant's end with EBANNED. Carries each remaining pool's session set over to `after`.
 */
export function changeBetween(before: EdgeState, after: EdgeState, now: number): StateChange {
  const ending: Array<readonly [Session, Fatal]> = [];
  for (const [id, was] of before.pools) {
    const next = after.pools.get(id);
    if (next) next.sessions = was.sessions;
    let reason: Fatal | undefined;
    if (!next || next.pool.tenant !== was.pool.tenant) reason = fatal.removed(was.pool.name, was.pool.tenant);
    else if (was.lines && (!next.lines || next.profile !== was.profile)) reason = fatal.upstreamChanged(was.pool.name, was.pool.tenant);
    if (reason) for (const session of was.sessions) ending.push([session, reason]);
  }
  const newlyBanned: PoolEntry[] = [];
  for (const [name, entry] of after.tenants) {
    const was = before.tenants.get(name);
    if (!isBanned(entry.tenant, now) || (was && isBanned(was.tenant, now))) continue;
    for (const pool of entry.pools.values()) {
      newlyBanned.push(pool);
      for (const session of pool.sessions) ending.push([session, fatal.bannedSession(entry.tenant.ban!.reason)]);
    }
  }
  return { ending, newlyBanned };
}

/** Every routable pool's two routes, grouped by TLS profile: what each engine serves. */
export function profilesOf(pools: ReadonlyMap<string, PoolEntry>): Map<string, ProfileRoutes> {
  const profiles = new Map<string, { tls: EdgeUpstream["tls"]; routes: Map<string, string> }>();
  for (const [id, entry] of pools) {
    if (!entry.lines) continue;
    let profile = profiles.get(entry.profile);
    if (!profile) profiles.set(entry.profile, (profile = { tls: entry.pool.upstream.tls, routes: new Map() }));
    for (const mode of POOL_MODES) profile.routes.set(routeName(id, mode), entry.lines[mode]);
  }
  return profiles;
}

/** The route names of these pools, grouped by TLS profile. */
export function routesByProfile(pools: readonly PoolEntry[]): Map<string, string[]> {
  const byProfile = new Map<string, string[]>();
  for (const entry of pools) {
    if (!entry.lines) continue;
    const routes = byProfile.get(entry.profile) ?? [];
    routes.push(...POOL_MODES.map((mode) => routeName(entry.pool.id, mode)));
    byProfile.set(entry.profile, routes);
  }
  return byProfile;
}

/** A pool's figures: its two routes' summed, and its sessions open through the edge (both ports). */
export interface PoolStats extends RouteFigures {
  clients: number;
}

/** Per pool: its open sessions, and the engine's figures of its two routes summed. */
export function poolStats(pools: ReadonlyMap<string, PoolEntry>, figures: ReadonlyMap<string, RouteFigures>): Map<string, PoolStats> {
  const stats = new Map<string, PoolStats>();
  for (const [id, entry] of pools) {
    const s: PoolStats = { clients: entry.sessions.size, ...emptyFigures() };
    for (const mode of POOL_MODES) {
      const f = figures.get(routeName(id, mode));
      if (f) addFigures(s, f);
    }
    stats.set(id, s);
  }
  return stats;
}
