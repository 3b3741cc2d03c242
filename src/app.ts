// Builds the service from explicit dependencies and returns start/stop. Tests run it in-process;
// only main.ts reads the environment and handles signals.
import type { Logger } from "pino";
import { AuthServiceService } from "../gen/qod/v1/auth";
import { DatabaseServiceService } from "../gen/qod/v1/database";
import { PoolServiceService } from "../gen/qod/v1/pool";
import { TenantServiceService } from "../gen/qod/v1/tenant";
import { authHandlers, createAuthDeps, createAuthenticator, seedAdmin } from "./auth";
import type { Config, PgTarget } from "./config";
import { createLifecycle, createReconciler, createServers, createVault, databaseHandlers } from "./databases";
import { mapDatabaseError } from "./db/errors";
import { createStateProbe } from "./db/readiness";
import type { StateDatabase } from "./db/state";
import { createGateway } from "./gateway/server";
import { loadRegistry } from "./gateway/transcode";
import { poolHandlers } from "./pools";
import { bindService } from "./server/bind";
import { createGrpcServer, type GrpcService } from "./server/grpc";
import type { Invoker } from "./server/invoker";
import { authenticateMiddleware } from "./server/middleware/authenticate";
import { compose } from "./server/middleware/compose";
import { deadlineMiddleware } from "./server/middleware/deadline";
import { errorsMiddleware } from "./server/middleware/errors";
import { loggingMiddleware } from "./server/middleware/logging";
import { readDescriptor } from "./server/reflection";
import { requestScreens } from "./server/request-screen";
import { createTenantCache, tenantHandlers } from "./tenants";

export interface AppDeps {
  config: Readonly<Config>;
  /** The state database's pools. */
  state: StateDatabase;
  /** The shared Postgres server that holds the state database and, by default, tenant databases. */
  target: PgTarget;
  logger: Logger;
}

export interface Started {
  /** The bound ports (useful when the config asks for port 0). */
  grpcPort: number;
  httpPort: number;
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

export function createApp(deps: AppDeps): App {
  const { config, state, logger } = deps;
  const { pool } = state;
  const auth = createAuthDeps(pool, config);
  // Pools on the servers that hold tenant databases, shared by DatabaseService and the reconciler.
  const servers = createServers(logger);
  const lifecycle = createLifecycle({
    lockPool: state.lockPool,
    lockSlots: state.lockSlots,
    servers,
    vault: createVault(config.vaultEncKey),
    defaults: deps.target,
    logger,
  });
  const reconciler = createReconciler(() => lifecycle.settleAbandoned(), config.reconcileIntervalSec * 1000, logger);
  const tenantCache = createTenantCache(state.url, config.tenantCacheSize, logger);
  // Outermost first: logging sees the final outcome, errors normalise what handlers throw.
  const wrap = compose([loggingMiddleware(logger), errorsMiddleware(mapDatabaseError), deadlineMiddleware, authenticateMiddleware(createAuthenticator(auth))]);
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
      service("qod.v1.PoolService", PoolServiceService, poolHandlers(pool, tenantCache)),
      service("qod.v1.DatabaseService", DatabaseServiceService, databaseHandlers({ pool, lifecycle, defaults: deps.target, config })),
      service("qod.v1.AuthService", AuthServiceService, authHandlers(auth)),
    ],
    descriptor,
  );
  // The JSON /api surface: a transcoder, as Envoy is in production, that calls the methods in-process.
  const gateway = createGateway({ descriptor, invokers, maxBodyBytes: config.maxBodyBytes, logger, requestTimeoutMs: config.httpRequestTimeoutMs });
  // Health says SERVING while the state database answers and the service is not stopping.
  let stopping = false;
  const probe = createStateProbe(pool, logger, () => grpc.setServing(!stopping && probe.ready));

  return {
    async start() {
      await seedAdmin(pool, config, logger);
      tenantCache.start();
      const grpcPort = await grpc.listen(config.host, config.grpcPort);
      logger.info({ host: config.host, grpcPort }, "serving gRPC");
      const httpPort = await gateway.listen(config.host, config.httpPort);
      logger.info({ host: config.host, httpPort }, "serving JSON /api");
      probe.start();
      const reconciled = reconciler.start();
      return { grpcPort, httpPort, reconciled };
    },
    async stop() {
      stopping = true;
      grpc.setServing(false);
      // HTTP requests run their calls in-process, so when both listeners have drained no call
      // runs any more, and what the calls need can go.
      await Promise.all([gateway.close(config.shutdownGraceMs), grpc.shutdown(config.shutdownGraceMs)]);
      await reconciler.stop();
      await probe.stop();
      await tenantCache.stop();
      await servers.end();
    },
  };
}
