// Every Prometheus metric the service exports, in one registry per app (tests run several apps in
// one process). The names of the gRPC metrics are go-grpc-prometheus's, so dashboards built for
// it work; the rest are qod_*. Label values come from closed sets (below), method names, codes,
// and the data plane's tenant and pool names: never request ids or other user input.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

export const PROVISIONING_OPERATIONS = ["create", "delete"] as const;
export const OUTCOMES = ["ok", "failed"] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** Why a login was refused before its password was checked: too many failures, or too much bcrypt work queued. */
export const THROTTLE_SCOPES = ["failures", "busy"] as const;
export type ThrottleScope = (typeof THROTTLE_SCOPES)[number];

/** prometheus/client_golang's DefBuckets, which go-grpc-prometheus uses. */
const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Provisioning makes a database and writes a catalog: tens of milliseconds to a minute. */
const PROVISIONING_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/**
 * The process's own metrics (CPU, memory, event loop, handles: prom-client's defaults) describe
 * the process, not an app, so they live once per process, made on the first scrape.
 */
let processRegistry: Registry | undefined;

function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/** The text a scrape gets: the app's metrics, then the process's. */
export async function exposition(metrics: Metrics): Promise<{ contentType: string; body: string }> {
  const [app, process] = await Promise.all([metrics.registry.metrics(), processMetrics().metrics()]);
  return { contentType: metrics.registry.contentType, body: `${app}\n${process}` };
}

export function createMetrics() {
  const registry = new Registry();
  const registers = [registry];
  const callLabels = ["grpc_type", "grpc_service", "grpc_method", "surface"] as const;
  return {
    registry,
    calls: {
      started: new Counter({ name: "grpc_server_started_total", help: "RPCs started on the server.", labelNames: callLabels, registers }),
      handled: new Counter({
        name: "grpc_server_handled_total",
        help: "RPCs completed on the server, whatever their status.",
        labelNames: [...callLabels, "grpc_code"],
        registers,
      }),
      seconds: new Histogram({
        name: "grpc_server_handling_seconds",
        help: "How long RPCs took until the server answered, in seconds.",
        labelNames: callLabels,
        buckets: DEFAULT_BUCKETS,
        registers,
      }),
    },
    provisioning: new Histogram({
      name: "qod_provisioning_seconds",
      help: "How long making (create) or dropping (delete) a tenant database took, by outcome, in seconds.",
      labelNames: ["operation", "outcome"],
      buckets: PROVISIONING_BUCKETS,
      registers,
    }),
    reconcilerPasses: new Counter({ name: "qod_reconciler_passes_total", help: "Reconciler passes, by outcome.", labelNames: ["outcome"], registers }),
    reconcilerActions: new Counter({
      name: "qod_reconciler_actions_total",
      help: "Rows an interrupted operation left that the reconciler settled: resource (database, pool), the state it found and the state it left.",
      labelNames: ["resource", "from", "to"],
      registers,
    }),
    tenantCacheLookups: new Counter({
      name: "qod_tenant_cache_lookups_total",
      help: "Tenant lookups of GetTenant and the authorization checks, answered from memory (hit) or the state database (miss).",
      labelNames: ["result"],
      registers,
    }),
    loginThrottled: new Counter({
      name: "qod_login_throttled_total",
      help: "Logins refused before their password was checked: too many recent failures (failures) or too many password checks queued (busy).",
      labelNames: ["scope"],
      registers,
    }),
    gauge,
    counterOf,
  };

  /** What a metric read at scrape time is made with: `collect` sets its value then. */
  function readAtScrape<M>(collect: (metric: M) => void | Promise<void>) {
    return {
      registers,
      async collect(this: M) {
        await collect(this);
      },
    };
  }

  /** A gauge whose value is read at scrape time by `collect` (which sets it). */
  function gauge<L extends string>(name: string, help: string, labelNames: readonly L[], collect: (g: Gauge<L>) => void | Promise<void>): Gauge<L> {
    return new Gauge<L>({ name, help, labelNames, ...readAtScrape(collect) });
  }

  /**
   * A counter mirroring a total kept elsewhere (PgBouncer's SHOW STATS): set from the source at
   * each scrape. The source restarts from zero when its process does, which Prometheus's rate()
   * reads as a counter reset.
   */
  function counterOf<L extends string>(name: string, help: string, labelNames: readonly L[], collect: (c: Counter<L>) => void | Promise<void>): Counter<L> {
    return new Counter<L>({ name, help, labelNames, ...readAtScrape(collect) });
  }
}

export type Metrics = ReturnType<typeof createMetrics>;
