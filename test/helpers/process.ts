// The service as a real child process, started with the node flags of `npm start`, and `buf curl` as an
// independent gRPC client.
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";

export const REPO_ROOT = path.join(__dirname, "..", "..");
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

let built = false;

/**
 * What `npm start` runs, so tests and the bench run what ships: its prestart script (the esbuild
 * bundle, made once per process), then "node <flags> <entry>" as package.json says.
 */
export function startCommand(): { flags: string[]; entry: string } {
  const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { scripts: { start: string } };
  const words = pkg.scripts.start.trim().split(/\s+/);
  const entry = words[words.length - 1] ?? "";
  if (words[0] !== "node" || !entry.endsWith(".js")) throw new Error(`unexpected start script: ${pkg.scripts.start}`);
  if (!built) {
    execFileSync("npm", ["run", "--silent", "prestart"], { cwd: REPO_ROOT, stdio: ["ignore", "ignore", "inherit"] });
    built = true;
  }
  return { flags: words.slice(1, -1), entry };
}

export interface ServerProcess {
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  exited: Promise<number | string>;
  kill(signal: NodeJS.Signals): Promise<number | string>;
}

/** Starts the service and waits until its health check answers SERVING. */
export async function startServerProcess(env: Record<string, string>, grpcPort: number, timeoutMs = 60_000): Promise<ServerProcess> {
  const { flags, entry } = startCommand();
  const child = spawn(process.execPath, [...flags, entry], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | string>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal ?? -1)));
  const server: ServerProcess = {
    child,
    output: () => output,
    exited,
    async kill(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
  const deadline = Date.now() + timeoutMs;
  let exitedEarly = false;
  void exited.then(() => (exitedEarly = true));
  while (Date.now() < deadline && !exitedEarly) {
    const health = await bufCurl(["-d", "{}", `http://127.0.0.1:${grpcPort}/grpc.health.v1.Health/Check`], 5_000);
    if (health.code === 0 && health.stdout.includes("SERVING")) return server;
    await new Promise((r) => setTimeout(r, 200));
  }
  await server.kill("SIGKILL");
  throw new Error(`the server did not become healthy:\n${output}`);
}
