// GetTenant's read cache: tenants by name, in this process, kept true by Postgres notifications.
//
// A change to a tenant or its pools notifies `qod_tenant_changed` at commit (migration 0004's
// triggers), and every replica drops that name. The replica that made a change also drops it
// itself as soon as the change returns, so its own clients never read their change stale;
// another replica may answer the old tenant until the notice reaches it (milliseconds), as a
// read from a Postgres standby may. While the notification connection is down nothing is
// cached, since a notice could be missed (db/listen.ts also probes it, so a connection that
// died silently is noticed), and no entry lives longer than ENTRY_TTL_MS whatever happens.
// QOD_TENANT_CACHE_SIZE=0 turns the cache off.
import { LRUCache } from "lru-cache";
import type { Tenant } from "../../gen/qod/v1/tenant";
import { sharedResponse } from "../call/shared-response";
import type { NotificationFeed } from "../db/listen";
import type { Metrics } from "../metrics";

/** The channel migrations 0004 and 0009's triggers notify with a changed tenant's name. */
export const TENANT_CHANNEL = "qod_tenant_changed";
/** The payload that means "every tenant" (a truncated table); never a tenant name. */
export const ALL_TENANTS = "*";
/** The longest a tenant is served from memory, even if a notice was missed. */
export const ENTRY_TTL_MS = 60_000;

export interface TenantCache {
  /** The tenant from the cache, or from `load` (kept when nothing changed while it loaded). */
  get(name: string, load: () => Promise<Tenant | undefined>): Promise<Tenant | undefined>;
  /**
   * Runs a change to a tenant (or its pools) and then drops the tenant, whatever the outcome: a
   * change that failed late may still have committed.
   */
  changing<T>(name: string, change: () => Promise<T>): Promise<T>;
  /** Starts listening for other replicas' changes; until then nothing is cached. */
  start(): void;
  stop(): Promise<void>;
}

/** `feed` is the shared subscription to TENANT_CHANNEL. */
/** `lookups` counts the gets answered from memory (hit) and from `load` (miss). */
export function createTenantCache(feed: NotificationFeed, size: number, lookups: Metrics["tenantCacheLookups"]): TenantCache {
  const entries = size > 0 ? new LRUCache<string, Tenant>({ max: size, ttl: ENTRY_TTL_MS }) : undefined;
  const hits = lookups.labels({ result: "hit" });
  const misses = lookups.labels({ result: "miss" });
  let unsubscribe: (() => void) | undefined;
  let listening = false;
  // Bumped by every change seen: a load that began before a change may hold the old tenant,
  // so it is returned but not kept.
  let generation = 0;
  const dropAll = () => {
    generation++;
    entries?.clear();
  };
  const forget = (name: string) => {
    generation++;
    entries?.delete(name);
  };

  return {
    async get(name, load) {
      const cached = listening ? entries?.get(name) : undefined;
      if (cached) {
        hits.inc();
        return cached;
      }
      misses.inc();
      const before = generation;
      const tenant = await load();
      // Shared by the calls that read it until it changes (and so encoded once); a ban that ends
      // ends its entry too, since `banned` would change with no notice.
      if (tenant && listening && before === generation) {
        const banEnds = tenant.bannedUntil ? tenant.bannedUntil.getTime() - Date.now() + 1 : Infinity;
        entries?.set(name, sharedResponse(tenant), { ttl: Math.max(1, Math.min(ENTRY_TTL_MS, banEnds)) });
      }
      return tenant;
    },
    async changing(name, change) {
      try {
        return await change();
      } finally {
        forget(name);
      }
    },
    start() {
      if (!entries || unsubscribe) return;
      unsubscribe = feed.subscribe({
        notify: (name) => (name === ALL_TENANTS ? dropAll() : forget(name)),
        listening: () => {
          dropAll(); // notices sent while not listening are lost
          listening = true;
        },
        lost: () => {
          listening = false;
          dropAll();
        },
      });
    },
    async stop() {
      listening = false;
      dropAll();
      unsubscribe?.();
      unsubscribe = undefined;
    },
  };
}
