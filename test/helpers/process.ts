// The service as a real child process, started with the node flags of `npm start`, and `buf curl` as an
// independent gRPC client.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { freePort, processAlive, stopOrphan } from "../../src/db/embedded";
import { REPO_ROOT, startCommand } from "../../tools/start-command";
import { quietLogger } from "./postgres";
import { waitFor } from "./wait";

export { REPO_ROOT };
const BUF = path.join(REPO_ROOT, "node_modules", ".bin", "buf");

export interface BufResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `buf curl --protocol grpc --http2-prior-knowledge <args>` (exit code = 8 × gRPC code on error). */
export function bufCurl(args: string[], timeoutMs = 20_000): Promise<BufResult> {
  return new Promise((resolve) => {
    execFile(BUF, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", ...args], { timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export interface ServerProcess {
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  exited: Promise<number | string>;
  kill(signal: NodeJS.Signals): Promise<number | string>;
}

/**
 * Starts the service and waits until its health check answers SERVING. The data plane's ports and
 * Supavisor's are free ones, and the embedded Postgres takes any free port, unless `env` names them.
 */
export async function startServerProcess(env: Record<string, string>, grpcPort: number, timeoutMs = 60_000): Promise<ServerProcess> {
  return waitUntilServing(await spawnServerProcess(env), grpcPort, timeoutMs);
}

/** Starts the service without waiting for it (see startServerProcess). */
export async function spawnServerProcess(env: Record<string, string>): Promise<ServerProcess> {
  const { flags, entry } = startCommand();
  const ports = {
    QOD_EDGE_TX_PORT: String(await freePort()),
    QOD_EDGE_SESSION_PORT: String(await freePort()),
    QOD_SUPAVISOR_HTTP_PORT: String(await freePort()),
    QOD_METRICS_PORT: String(await freePort()),
    QOD_EMBEDDED_PG_PORT: "0",
  };
  const child = spawn(process.execPath, [...flags, entry], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...ports, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | string>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal ?? -1)));
  return {
    child,
    output: () => output,
    exited,
    async kill(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Waits until the service's health check answers SERVING; kills it if it does not in time. */
export async function waitUntilServing(server: ServerProcess, grpcPort: number, timeoutMs = 60_000): Promise<ServerProcess> {
  const { child } = server;
  try {
    await waitFor(
      () => `the server to become healthy:\n${server.output()}`,
      async () => {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the server exited:\n${server.output()}`);
        const health = await bufCurl(["-d", "{}", `http://127.0.0.1:${grpcPort}/grpc.health.v1.Health/Check`], 5_000);
        return health.code === 0 && health.stdout.includes("SERVING");
      },
      { timeoutMs, everyMs: 200 },
    );
    return server;
  } catch (err) {
    await server.kill("SIGKILL");
    throw err;
  }
}

/** The PgBouncer processes whose config lies under `dataDir` (the engines of a service using it). */
export function engineProcesses(dataDir: string): number[] {
  const pids: number[] = [];
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const [binary, ini] = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      if (binary?.endsWith("pgbouncer") && ini?.startsWith(`${dataDir}/`)) pids.push(Number(pid));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** After a test's service: what a SIGKILLed one left running (embedded Postgres, engines) is stopped, its directory removed. */
export async function removeServerData(dataDir: string): Promise<void> {
  await stopOrphan(path.join(dataDir, "pg"), quietLogger);
  for (const pid of engineProcesses(dataDir)) if (processAlive(pid)) process.kill(pid, "SIGKILL");
  rmSync(dataDir, { recursive: true, force: true });
}
