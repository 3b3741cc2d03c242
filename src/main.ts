// Process entry: config → Postgres (embedded unless configured) → migrate → serve → stop on signal.
import { createApp } from "./app";
import { ConfigError, loadConfig, withGeneratedSecrets } from "./config";
import { startEmbeddedPostgres, stopOrphanedEmbeddedPostgres, type EmbeddedPostgres } from "./db/embedded";
import { reachServer } from "./db/reach";
import { openStateDatabase } from "./db/state";
import { createLogger } from "./logger";
import { prepareDataPlane } from "./plane";
import { portsInUse } from "./ports";

async function main(): Promise<void> {
  let config;
  try {
    config = withGeneratedSecrets(loadConfig(process.env));
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
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
    ...(edgeOn ? [{ variable: "QOD_EDGE_TX_PORT", host: config.edge.host, port: config.edge.transactionPort }] : []),
    ...(edgeOn ? [{ variable: "QOD_EDGE_SESSION_PORT", host: config.edge.host, port: config.edge.sessionPort }] : []),
  ]);
  if (busy.length > 0) {
    process.stderr.write(`${busy.join("\n")}: choose another port, or stop what uses it\n`);
    process.exit(2);
  }
  const edge = edgeOn ? await prepareDataPlane(config, logger) : undefined;
  let embedded: EmbeddedPostgres | undefined;
  if (config.pg) {
    const variables = config.pg.url ? { address: "QOD_PG_URL", login: "QOD_PG_URL" } : { address: "QOD_PG_HOST, QOD_PG_PORT", login: "QOD_PG_USER, QOD_PG_PASSWORD" };
    await reachServer(config.pg, { database: config.pgDatabase, variables, timeoutMs: config.pgConnectTimeoutSec * 1000, logger });
  }
  const target = config.pg ?? (embedded = await startEmbeddedPostgres(config.dataDir, logger, { port: config.embeddedPgPort })).target;
  const state = await openStateDatabase(target, config.pgDatabase, logger, config.pgPoolSize);
  const app = createApp({ config, state, target, logger, ...(edge && { edge }) });
  await app.start();

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down");
    try {
      await app.stop();
      await state.end();
      await embedded?.stop();
    } finally {
      process.exit(0);
    }
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
}

main().catch((err: unknown) => {
  process.stderr.write(`qod failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
