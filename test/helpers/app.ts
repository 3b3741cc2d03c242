// Starts the real service in-process on loopback ports chosen by the kernel, on a fresh state
// database cloned from the migrated template.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Logger } from "pino";
import type { DatabasePool } from "slonik";
import { createApp } from "../../src/app";
import { generateSelfSignedCertificate, type CertificatePair } from "../../src/edge/tls";
import { loadConfig, type Config } from "../../src/config";
import { pgUrl } from "../../src/db/pool";
import { connectState, type StateDatabase } from "../../src/db/state";
import { clientsFor, type Clients } from "./clients";
import { PGBOUNCER } from "./edge";
import { createTestDatabase, dropDatabase, quietLogger, sharedPostgres } from "./postgres";

export const TEST_API_KEY = "test-api-key-0123456789abcdef";
export const TEST_SESSION_SECRET = "test-session-secret-0123456789abcdef0123456789";
export const TEST_VAULT_KEY = "0123456789abcdef0123456789abcdef";
export const TEST_API_JWT_SECRET = "test-api-jwt-secret-0123456789abcdef0123456789";

export interface TestApp {
  config: Readonly<Config>;
  /** The calls' pool on the suite's own state database (`state.pool`). */
  pool: DatabasePool;
  state: StateDatabase;
  database: string;
  grpcPort: number;
  grpcAddress: string;
  httpPort: number;
  /** Base URL of the JSON /api gateway, e.g. `http://127.0.0.1:34567`. */
  httpBase: string;
  clients: Clients;
  /** Resolves when the service's reconciler has finished the pass it runs at start. */
  reconciled: Promise<void>;
  /** The metrics listener's port, when QOD_METRICS_PORT turns it on. */
  metricsPort: number | undefined;
  /** The data plane's ports, when the app runs it (the `edge` option). */
  edge: { transactionPort: number; sessionPort: number } | undefined;
  /** Stops the service and starts a new one on the same state database (a process restart). */
  restart(): Promise<TestApp>;
  /** Starts another replica on the same state database; its stop() leaves the database alone. */
  replica(): Promise<TestApp>;
  stop(): Promise<void>;
}

export interface TestAppOptions {
  env?: Record<string, string>;
  /** Runs the data plane too (on ports the kernel picks), with TLS from a test certificate. */
  edge?: boolean;
  /** The service's logger (quiet by default); tests that read the logs pass their own. */
  logger?: Logger;
  /**
   * Changes the parsed configuration, for tests of what must hold even with a configuration that
   * loadConfig refuses (defence in depth).
   */
  configure?: (config: Readonly<Config>) => Readonly<Config>;
}

/** The environment a test app runs with; `env` overrides or adds variables. */
export function testEnv(database: string, dataDir: string, env: Record<string, string> = {}): Record<string, string> {
  const { target } = sharedPostgres();
  return {
    QOD_GRPC_PORT: "0",
    QOD_HTTP_PORT: "0",
    QOD_SUPAVISOR_HTTP_PORT: "0",
    // Off; test/observability.test.ts turns it on.
    QOD_METRICS_PORT: "0",
    // Suites that connect through the data plane turn it on (test/helpers/app.ts startTestApp's edge option).
    QOD_EDGE: "off",
    QOD_EDGE_TX_PORT: "0",
    QOD_EDGE_SESSION_PORT: "0",
    QOD_HOST: "127.0.0.1",
    QOD_DATA_DIR: dataDir,
    // The suites use the run's shared server; a suite that turns on embedded mode gets a free port.
    QOD_EMBEDDED_PG_PORT: "0",
    QOD_PG_HOST: target.host,
    QOD_PG_PORT: String(target.port),
    QOD_PG_USER: target.user,
    ...(target.password !== undefined && { QOD_PG_PASSWORD: target.password }),
    QOD_PG_DBNAME: database,
    QOD_API_KEY: TEST_API_KEY,
    QOD_SESSION_JWT_SECRET: TEST_SESSION_SECRET,
    QOD_VAULT_ENC_KEY: TEST_VAULT_KEY,
    API_JWT_SECRET: TEST_API_JWT_SECRET,
    QOD_DATA_PATH: path.join(dataDir, "lake"),
    QOD_LOG_LEVEL: "silent",
    QOD_SHUTDOWN_GRACE_MS: "2000",
    QOD_BCRYPT_COST: "4",
    ...env,
  };
}

let certificate: Promise<CertificatePair> | undefined;
/** One self-signed certificate per run for the data plane's TLS. */
export const testCertificate = (): Promise<CertificatePair> => (certificate ??= generateSelfSignedCertificate({ hosts: ["localhost", "127.0.0.1"] }));

export async function startTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const database = await createTestDatabase();
  const dataDir = mkdtempSync(path.join(tmpdir(), "qod-test-data-"));
  return launch(database, dataDir, { ...options, env: { ...(options.edge && { QOD_EDGE: "on" }), ...options.env } });
}

async function launch(database: string, dataDir: string, options: TestAppOptions, ownsDatabase = true): Promise<TestApp> {
  const postgres = sharedPostgres();
  const loaded = loadConfig(testEnv(database, dataDir, options.env));
  const config = options.configure ? options.configure(loaded) : loaded;
  const state = await connectState(pgUrl(postgres.target, database), quietLogger, config.pgPoolSize);
  const { pool } = state;
  const edge = options.edge ? { pgbouncerBinary: PGBOUNCER, tls: await testCertificate() } : undefined;
  const app = createApp({ config, state, target: postgres.target, logger: options.logger ?? quietLogger, ...(edge && { edge }) });
  const started = await app.start();
  const { grpcPort, httpPort, reconciled } = started;
  const grpcAddress = `127.0.0.1:${grpcPort}`;
  const clients = clientsFor(grpcAddress);
  const halt = async () => {
    clients.close();
    await app.stop();
    await state.end();
  };
  return {
    config,
    pool,
    state,
    database,
    grpcPort,
    grpcAddress,
    httpPort,
    httpBase: `http://127.0.0.1:${httpPort}`,
    clients,
    reconciled,
    edge: started.edge,
    metricsPort: started.metricsPort,
    async restart() {
      await halt();
      return launch(database, dataDir, options, ownsDatabase);
    },
    replica() {
      return launch(database, dataDir, options, false);
    },
    async stop() {
      await halt();
      if (!ownsDatabase) return;
      await dropDatabase(postgres, database);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
