// The edge under test: a real PgBouncer behind it, the shared test Postgres as the upstream, and
// real clients (psql as a child process, node-postgres).
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { Client, type ClientConfig } from "pg";
import pino, { type Logger } from "pino";
import { findPgbouncer } from "../../src/edge/engines";
import { Edge, type EdgeOptions } from "../../src/edge/server";
import type { EdgePool, EdgeTenant } from "../../src/edge/snapshot";
import { scramVerifier } from "../../src/scram";
import { sharedPostgres, uniquePrefix } from "./postgres";

export const PGBOUNCER = findPgbouncer(undefined, "/usr/local/bin:/usr/bin:/bin") ?? "/usr/sbin/pgbouncer";
export const PSQL = "/usr/bin/psql";

/**
 * The suites that run a real edge need PgBouncer and psql (Debian: pgbouncer, postgresql-client) and
 * the openssl CLI. `.ci/run` installs them; without them the suites fail, saying what to install.
 */
export function requireTools(): void {
  const missing = [PGBOUNCER, PSQL].filter((file) => !existsSync(file));
  if (missing.length > 0) throw new Error(`${missing.join(" and ")} missing: apt-get install pgbouncer postgresql-client`);
}

/** Set EDGE_TEST_LOG=debug to see the edge's and PgBouncer's logs. */
export function edgeTestLogger(): Logger {
  return pino({ level: process.env.EDGE_TEST_LOG ?? "silent" });
}

export interface RunningEdge {
  edge: Edge;
  transactionPort: number;
  sessionPort: number;
}

export async function startEdge(options: Partial<EdgeOptions> = {}): Promise<RunningEdge> {
  const edge = new Edge({
    host: "127.0.0.1",
    transactionPort: 0,
    sessionPort: 0,
    pgbouncerBinary: PGBOUNCER,
    logger: edgeTestLogger(),
    ...options,
  });
  const ports = await edge.listen();
  return { edge, ...ports };
}

/** Runs SQL as the shared server's superuser on `database` (one connection, closed after). */
export async function asSuperuser<T>(database: string, run: (client: Client) => Promise<T>): Promise<T> {
  const { target } = sharedPostgres();
  const client = new Client({ host: target.host, port: target.port, user: target.user, password: target.password, database });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

export interface UpstreamDatabase {
  database: string;
  role: string;
  password: string;
}

/** A database and a LOGIN role owning it on the shared server (names unique to the caller). */
export async function createUpstreamDatabase(prefix = uniquePrefix("edge")): Promise<UpstreamDatabase> {
  const role = `${prefix}_owner`;
  const password = randomBytes(12).toString("hex");
  await asSuperuser("postgres", async (c) => {
    await c.query(`CREATE ROLE ${c.escapeIdentifier(role)} LOGIN PASSWORD ${c.escapeLiteral(password)}`);
    await c.query(`CREATE DATABASE ${c.escapeIdentifier(prefix)} OWNER ${c.escapeIdentifier(role)}`);
  });
  return { database: prefix, role, password };
}

export async function dropUpstreamDatabase(db: UpstreamDatabase): Promise<void> {
  await asSuperuser("postgres", async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(db.database)} WITH (FORCE)`);
    await c.query(`DROP ROLE IF EXISTS ${c.escapeIdentifier(db.role)}`);
  });
}

/** A pool whose client user `user` logs in with `password`, routed to `db` as its owner. */
export function makePool(tenant: string, user: string, password: string, db: UpstreamDatabase, overrides: Partial<EdgePool> = {}): EdgePool {
  const { target } = sharedPostgres();
  return {
    id: `p-${randomBytes(16).toString("hex")}`,
    tenant,
    name: user,
    user,
    database: db.database,
    disabled: false,
    verifier: scramVerifier(password),
    maxClients: 100,
    poolSize: 2,
    upstream: {
      host: target.host,
      port: target.port,
      database: db.database,
      user: db.role,
      password: db.password,
      tls: { mode: "disable" },
    },
    ...overrides,
  };
}

export function makeTenant(name: string, pools: EdgePool[], overrides: Partial<EdgeTenant> = {}): EdgeTenant {
  return {
    name,
    disabled: false,
    enforceSsl: false,
    allowList: [],
    users: new Map(pools.map((p) => [p.user, p])),
    ...overrides,
  };
}

export interface PsqlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** psql as a child process (libpq's SCRAM), the password in PGPASSWORD. */
export function psql(url: string, password: string, sql: string, extraEnv: Record<string, string> = {}): Promise<PsqlResult> {
  return new Promise((resolve) => {
    execFile(
      PSQL,
      ["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql, url],
      { env: { PATH: "/usr/bin:/bin", PGPASSWORD: password, PGCONNECT_TIMEOUT: "10", ...extraEnv }, timeout: 30_000 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout: stdout.trim(), stderr: stderr.trim() }),
    );
  });
}

export const edgeUrl = (port: number, user: string, database: string, query = "sslmode=disable"): string =>
  `postgresql://${encodeURIComponent(user)}@127.0.0.1:${port}/${encodeURIComponent(database)}?${query}`;

/** A node-postgres client through the edge (connected). */
export async function pgClient(port: number, user: string, password: string, database: string, extra: Partial<ClientConfig> = {}): Promise<Client> {
  const client = new Client({ host: "127.0.0.1", port, user, password, database, ...extra });
  client.on("error", () => undefined); // tests look at query results and "end" events
  await client.connect();
  return client;
}

/** The error a connection attempt ends with (node-postgres), or undefined if it connected. */
export async function pgConnectError(port: number, user: string, password: string, database: string, extra: Partial<ClientConfig> = {}): Promise<(Error & { code?: string; severity?: string }) | undefined> {
  const client = new Client({ host: "127.0.0.1", port, user, password, database, ...extra });
  client.on("error", () => undefined);
  try {
    await client.connect();
  } catch (err) {
    return err as Error & { code?: string };
  }
  await client.end();
  return undefined;
}
