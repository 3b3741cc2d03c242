// Builds the service from explicit dependencies and returns start/stop. Tests run it in-process;
// only main.ts reads the environment and handles signals.
import path from "node:path";
import type { Logger } from "pino";
import { AuthServiceService } from "../gen/qod/v1/auth";
import { DatabaseServiceService } from "../gen/qod/v1/database";
import { PoolServiceService } from "../gen/qod/v1/pool";
import { SupavisorServiceService } from "../gen/qod/v1/supavisor";
import { TenantServiceService } from "../gen/qod/v1/tenant";
import { authHandlers, createAuthDeps, createAuthenticator, seedAdmin } from "./auth";
import type { Config, PgTarget } from "./config";
import { createLifecycle, createReconciler, createServers, databaseHandlers } from "./databases";
import { createNotificationFeed } from "./db/listen";
import { mapDatabaseError } from "./db/errors";
import { migrationsApplied } from "./db/migrate";
import { createStateProbe } from "./db/readiness";
import type { StateDatabase } from "./db/state";
import { createMetricsListener } from "./gateway/metrics-listener";
import { probeRoutes, type Readiness } from "./gateway/probes";
import { createGateway } from "./gateway/server";
import type { CertificatePair } from "./edge/tls";
import { loadRegistry } from "./gateway/transcode";
import { createMetrics, type Metrics } from "./metrics";
import { createDataPlane, type DataPlane } from "./plane";
import { countPools, poolHandlers, settleAbandonedPools } from "./pools";
import { bindService } from "./server/bind";
import { createGrpcServer, type GrpcService } from "./server/grpc";
import type { Invoker } from "./server/invoker";
import { authenticateMiddleware } from "./server/middleware/authenticate";
import { compose } from "./server/middleware/compose";
import { deadlineMiddleware } from "./server/middleware/deadline";
import { errorsMiddleware } from "./server/middleware/errors";
import { loggingMiddleware } from "./server/middleware/logging";
import { metricsMiddleware } from "./server/middleware/metrics";
import { readDescriptor } from "./server/reflection";
import { requestScreens } from "./server/request-screen";
import { supavisorHandlers } from "./supavisor";
import { createTenantCache, TENANT_CHANNEL, tenantHandlers } from "./tenants";
import { createVault } from "./vault";

export interface AppDeps {
  config: Readonly<Config>;
  /** The state database's pools. */
  state: StateDatabase;
  /** The shared Postgres server that holds the state database and, by default, tenant databases. */
  target: PgTarget;
  logger: Logger;
  /**
   * The data plane's engine and the TLS its clients get (main.ts finds or installs PgBouncer);
   * without it, or with QOD_EDGE=off, the service runs without a data plane.
   */
  edge?: { pgbouncerBinary: string; tls: CertificatePair | undefined };
}

export interface Started {
  /** The bound ports (useful when the config asks for port 0). */
  grpcPort: number;
  httpPort: number;
  /** Supavisor's JSON port; undefined when QOD_SUPAVISOR_HTTP_PORT is 0. */
  supavisorHttpPort: number | undefined;
  /** The metrics listener's port; undefined when QOD_METRICS_PORT is 0. */
  metricsPort: number | undefined;
  /** The data plane's ports; undefined when it is off. */
  edge: { transactionPort: number; sessionPort: number } | undefined;
  /** Resolves when the reconciler's first pass, run at start, is over. */
  reconciled: Promise<void>;
}

export interface App {
  /** Starts listening and the reconciler (without waiting for its first pass). */
  start(): Promise<Started>;
  /**
   * Stops in order: health NOT_SERVING and both listeners stop accepting at once; calls in
   * flight finish within QOD_SHUTDOWN_GRACE_MS (then they are cancelled); then the reconciler,
   * the state probe, the tenant cache and the pools on tenant servers. The caller closes the
   * state pools and Postgres after (main.ts).
   */
  stop(): Promise<void>;
}

/** How often readiness is looked at again for the gRPC health service (the data plane has no events for it). */
const READINESS_INTERVAL_MS = 1_000;
/** The longest /health waits for the pools' count before it answers the last one known. */
const POOLS_COUNT_TIMEOUT_MS = 1_000;
/** How long a pools' count stays fresh (upstream QOD caches its health 5 s). */
const POOLS_COUNT_TTL_MS = 5_000;

export function createApp(deps: AppDeps): App {
  const { config, state, logger } = deps;
  const { pool } = state;
  const metrics = createMetrics();
  const auth = createAuthDeps(pool, config, metrics);
  const vault = createVault(config.vaultEncKey);
  // Pools on the servers that hold tenant databases, shared by DatabaseService and the reconciler.
  const servers = createServers(logger);
  const lifecycle = createLifecycle({
    lockPool: state.lockPool,
    lockSlots: state.lockSlots,
    servers,
    vault,
    defaults: deps.target,
    logger,
    metrics,
  });
  // One LISTEN connection for the replica: the tenant cache and the data plane both follow it.
  const feed = createNotificationFeed(state.url, TENANT_CHANNEL, logger);
  const tenantCache = createTenantCache(feed, config.tenantCacheSize, metrics.tenantCacheLookups);
  const plane: DataPlane | undefined =
    config.edge.enabled && deps.edge
      ? createDataPlane({
          host: config.edge.host,
          transactionPort: config.edge.transactionPort,
          sessionPort: config.edge.sessionPort,
          pgbouncerBinary: deps.edge.pgbouncerBinary,
          runDir: path.join(config.dataDir, "edge"),
          maxConnections: config.edge.maxConnections,
          tls: deps.edge.tls,
          routes: { pool, vault, defaults: deps.target, logger },
          feed,
          logger,
        })
      : undefined;
  const reconciler = createReconciler(
    async () => (await lifecycle.settleAbandoned()) + (await settleAbandonedPools(pool, lifecycle, logger, metrics.reconcilerActions)),
    config.reconcileIntervalSec * 1000,
    logger,
    metrics.reconcilerPasses,
  );
  // Outermost first: logging and metrics see the final outcome, errors normalise what handlers throw.
  const wrap = compose([loggingMiddleware(logger), metricsMiddleware(metrics.calls), errorsMiddleware(mapDatabaseError), deadlineMiddleware, authenticateMiddleware(createAuthenticator(auth))]);
  const descriptor = readDescriptor();
  const screens = requestScreens(loadRegistry(descriptor));
  // Every method by path, for the gateway to call in-process.
  const invokers = new Map<string, Invoker>();
  const service = (name: string, definition: GrpcService["definition"], handlers: Parameters<typeof bindService>[1]): GrpcService => {
    const bound = bindService(definition, handlers, wrap, logger, screens);
    for (const [path, invoke] of bound.invokers) invokers.set(path, invoke);
    return { name, definition: bound.definition, implementation: bound.implementation };
  };
  const grpc = createGrpcServer(
    [
      service("qod.v1.TenantService", TenantServiceService, tenantHandlers(pool, tenantCache)),
      service("qod.v1.PoolService", PoolServiceService, poolHandlers({ pool, tenants: tenantCache, vault, roles: lifecycle, ...(plane && { stats: plane.stats }) })),
      service("qod.v1.DatabaseService", DatabaseServiceService, databaseHandlers({ pool, lifecycle, defaults: deps.target, config })),
      service("qod.v1.AuthService", AuthServiceService, authHandlers(auth)),
      service("qod.v1.SupavisorService", SupavisorServiceService, supavisorHandlers({ pool, vault, tenants: tenantCache, logger })),
    ],
    descriptor,
  );
  // Ready (gRPC health SERVING, /readyz 200) while the state database answers, its migrations are
  // in, the data plane (when on) listens with its engines up, and the service is not stopping.
  let stopping = false;
  let migrated = false;
  const probe = createStateProbe(pool, logger, () => updateServing());
  const readiness = (): Readiness => {
    const checks = {
      state_database: probe.ready ? "ok" : "failing",
      migrations: migrated ? "ok" : "failing",
      data_plane: plane ? (plane.health().ok ? "ok" : "failing") : "off",
      accepting_calls: stopping ? "failing" : "ok",
    } as const;
    return { ready: Object.values(checks).every((c) => c !== "failing"), checks };
  };
  let serving: boolean | undefined;
  const updateServing = () => {
    const now = readiness().ready;
    if (now !== serving) grpc.setServing((serving = now));
  };
  let readinessTimer: NodeJS.Timeout | undefined;
  // /health is open: its count is read at most once per POOLS_COUNT_TTL_MS, however many ask.
  let poolsCount = 0;
  let countedAt = -Infinity;
  let counting: Promise<number> | undefined;
  const probes = probeRoutes({
    readiness,
    async poolsCount() {
      if (Date.now() - countedAt < POOLS_COUNT_TTL_MS) return poolsCount;
      counting ??= countPools(pool)
        .then(
          (n) => {
            countedAt = Date.now();
            return (poolsCount = n);
          },
          () => {
            countedAt = Date.now(); // out of reach: the last count known, tried again in a while
            return poolsCount;
          },
        )
        .finally(() => (counting = undefined));
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<number>((resolve) => (timer = setTimeout(() => resolve(poolsCount), POOLS_COUNT_TIMEOUT_MS)));
      return Promise.race([counting, late]).finally(() => clearTimeout(timer));
    },
  });
  observeApp(metrics, state, () => readiness().ready);
  plane?.observe(metrics);
  // The JSON /api surface: a transcoder, as Envoy is in production, that calls the methods in-process.
  const gateway = createGateway({
    descriptor,
    invokers,
    maxBodyBytes: config.maxBodyBytes,
    logger,
    requestTimeoutMs: config.httpRequestTimeoutMs,
    plainRoutes: probes,
  });
  const metricsListener = createMetricsListener(metrics, probes, logger);

  return {
    async start() {
      await seedAdmin(pool, config, logger);
      migrated = await migrationsApplied(pool);
      if (!migrated) logger.warn("the state database lacks migrations this version ships: not ready until they are applied (restart to migrate)");
      // Health starts SERVING (grpc-js's default): say what readiness says before anyone can ask.
      updateServing();
      tenantCache.start();
      const grpcPort = await grpc.listen(config.host, config.grpcPort);
      logger.info({ host: config.host, grpcPort }, "serving gRPC");
      const httpPort = await gateway.listen(config.host, config.httpPort);
      logger.info({ host: config.host, httpPort }, "serving JSON /api");
      // Supavisor's port serves the same JSON API, so its documented requests work as written.
      const supavisorHttpPort = config.supavisorHttpPort === 0 ? undefined : await gateway.listen(config.host, config.supavisorHttpPort);
      if (supavisorHttpPort !== undefined) logger.info({ host: config.host, supavisorHttpPort }, "serving JSON /api on Supavisor's port");
      if (config.devInsecureSecrets) logger.warn("QOD_DEV_INSECURE_SECRETS is set: a short API_JWT_SECRET is accepted; never use this outside development");
      const edge = await plane?.start();
      if (edge) logger.info({ host: config.edge.host, ...edge }, "serving the data plane");
      const metricsPort = config.metricsPort === 0 ? undefined : await metricsListener.listen(config.metricsHost, config.metricsPort);
      if (metricsPort !== undefined) logger.info({ host: config.metricsHost, metricsPort }, "serving /metrics and the probes");
      probe.start();
      updateServing();
      readinessTimer = setInterval(updateServing, READINESS_INTERVAL_MS);
      readinessTimer.unref();
      const reconciled = reconciler.start();
      return { grpcPort, httpPort, supavisorHttpPort, metricsPort, edge, reconciled };
    },
    async stop() {
      stopping = true;
      clearInterval(readinessTimer);
      updateServing();
      // HTTP requests run their calls in-process, so when both listeners have drained no call
      // runs any more, and what the calls need can go.
      await Promise.all([gateway.close(config.shutdownGraceMs), grpc.shutdown(config.shutdownGraceMs)]);
      // Last of the listeners: /readyz answered 503 on it while the others drained.
      await metricsListener.close();
      await plane?.stop();
      await reconciler.stop();
      await probe.stop();
      await tenantCache.stop();
      await feed.close();
      await servers.end();
    },
  };
}

/** The app's own gauges: readiness and the state database's two pools. */
function observeApp(metrics: Metrics, state: StateDatabase, ready: () => boolean): void {
  metrics.gauge("qod_ready", "1 when the service is ready (GET /readyz answers 200), else 0.", [], (g) => g.set(ready() ? 1 : 0));
  const pools = { calls: state.pool, locks: state.lockPool };
  metrics.gauge("qod_state_pool_connections", "Connections of the state database's pools (calls, locks), in use or idle.", ["pool", "state"], (g) => {
    for (const [name, p] of Object.entries(pools)) {
      const s = p.state();
      g.set({ pool: name, state: "in_use" }, s.acquiredConnections);
      g.set({ pool: name, state: "idle" }, s.idleConnections);
    }
  });
  metrics.gauge("qod_state_pool_waiting", "Calls waiting for a connection of the state database's pools (calls, locks).", ["pool"], (g) => {
    for (const [name, p] of Object.entries(pools)) g.set({ pool: name }, p.state().waitingClients);
  });
}
