// Process entry: config → Postgres (embedded unless configured) → migrate → serve → stop on signal.
//
// SIGTERM, SIGINT and SIGHUP stop the service in order (App.stop: stop accepting, report
// NOT_SERVING, let calls in flight finish within QOD_SHUTDOWN_GRACE_MS, then the reconciler and
// the pools), then the state pools, then the embedded Postgres, then the process exits 0. A signal
// that arrives while the service is still starting stops it once it has started. `npm start`
// execs node, so a signal to `npm start` reaches this process (package.json).
import { createApp, type App } from "./app";
import { ConfigError, loadConfig, withGeneratedSecrets, type Config } from "./config";
import { startEmbeddedPostgres, stopOrphanedEmbeddedPostgres, type EmbeddedPostgres } from "./db/embedded";
import { reachServer } from "./db/reach";
import { openStateDatabase, type StateDatabase } from "./db/state";
import { createLogger } from "./logger";
import { prepareDataPlane } from "./plane";
import { portsInUse } from "./ports";

const STOP_SIGNALS = ["SIGTERM", "SIGINT", "SIGHUP"] as const;

function configOrExit(): Readonly<Config> {
  try {
    return withGeneratedSecrets(loadConfig(process.env));
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

async function main(): Promise<void> {
  const config = configOrExit();
  const logger = createLogger(config.logLevel);
  const edgeOn = config.edge.enabled;
  const embeddedPg = config.pg === undefined;
  // An embedded Postgres left running by a SIGKILLed start holds its port: stop it before checking.
  if (embeddedPg) await stopOrphanedEmbeddedPostgres(config.dataDir, logger);
  const busy = await portsInUse([
    ...(embeddedPg ? [{ variable: "QOD_EMBEDDED_PG_PORT", host: "127.0.0.1", port: config.embeddedPgPort }] : []),
    { variable: "QOD_GRPC_PORT", host: config.host, port: config.grpcPort },
    { variable: "QOD_HTTP_PORT", host: config.host, port: config.httpPort },
    { variable: "QOD_SUPAVISOR_HTTP_PORT", host: config.host, port: config.supavisorHttpPort },
    { variable: "QOD_METRICS_PORT", host: config.metricsHost, port: config.metricsPort },
    ...(edgeOn ? [{ variable: "QOD_EDGE_TX_PORT", host: config.edge.host, port: config.edge.transactionPort }] : []),
    ...(edgeOn ? [{ variable: "QOD_EDGE_SESSION_PORT", host: config.edge.host, port: config.edge.sessionPort }] : []),
  ]);
  if (busy.length > 0) {
    process.stderr.write(`${busy.join("\n")}: choose another port, or stop what uses it\n`);
    process.exit(2);
  }
  const edge = edgeOn ? await prepareDataPlane(config, logger) : undefined;
  // What has started so far, stopped in reverse order.
  let embedded: EmbeddedPostgres | undefined;
  let state: StateDatabase | undefined;
  let app: App | undefined;

  let stopping: string | undefined;
  let started: Promise<void> = Promise.resolve();
  const stop = async (signal: string) => {
    if (stopping) return void logger.info({ signal, first: stopping }, "already shutting down");
    stopping = signal;
    logger.info({ signal, graceMs: config.shutdownGraceMs }, "shutting down");
    let code = 0;
    try {
      await started.catch(() => {});
      await app?.stop();
      await state?.end();
      await embedded?.stop();
      logger.info("stopped");
    } catch (err) {
      logger.error({ err }, "failed to stop cleanly");
      code = 1;
    } finally {
      process.exit(code);
    }
  };
  for (const signal of STOP_SIGNALS) process.on(signal, () => void stop(signal));

  started = (async () => {
    if (config.pg) {
      const variables = config.pg.url ? { address: "QOD_PG_URL", login: "QOD_PG_URL" } : { address: "QOD_PG_HOST, QOD_PG_PORT", login: "QOD_PG_USER, QOD_PG_PASSWORD" };
      await reachServer(config.pg, { database: config.pgDatabase, variables, timeoutMs: config.pgConnectTimeoutSec * 1000, logger });
      if (stopping) return;
    }
    const target = config.pg ?? (embedded = await startEmbeddedPostgres(config.dataDir, logger, { port: config.embeddedPgPort })).target;
    state = await openStateDatabase(target, config.pgDatabase, logger, config.pgPoolSize);
    if (stopping) return;
    app = createApp({ config, state, target, logger, ...(edge && { edge }) });
    await app.start();
  })();
  await started;
}

main().catch((err: unknown) => {
  process.stderr.write(`qod failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
