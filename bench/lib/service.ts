// The service under test, as `npm start` runs it (its esbuild bundle, dist/main.js), in its own
// process, so its memory can be read from /proc and its CPU profiled apart from the generators.
import type { ChildProcess } from "node:child_process";
import { createWriteStream, readFileSync } from "node:fs";
import path from "node:path";
import { startCommand } from "../../tools/start-command";
import { healthy } from "./client";
import { exited, REPO_ROOT, spawnTracked, stopChild } from "./processes";

export interface ServiceProcess {
  child: ChildProcess;
  pid: number;
  /** Calls the service logged as failed so far (every non-OK call logs "call failed" at info or above). */
  failedCalls(): number;
  /** The last lines it printed, for error messages. */
  tail(): string;
  stop(): Promise<number | string>;
}

/** VmHWM (peak resident set) and VmRSS of a live process, in MiB. */
export function memoryOf(pid: number): { peakMiB: number; rssMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { peakMiB: kib("VmHWM") / 1024, rssMiB: kib("VmRSS") / 1024 };
}

/**
 * A node process running `script` (TypeScript unless `loader` says how node loads it: tsx's flags by default);
 * `nodeArgs` go before it (e.g. --cpu-prof).
 */
export function spawnNode(
  script: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; nodeArgs?: string[]; loader?: string[] } = {},
): ChildProcess {
  return spawnTracked(process.execPath, [...(options.nodeArgs ?? []), ...(options.loader ?? ["--import", "tsx"]), path.join(REPO_ROOT, script), ...args], {
    cwd: REPO_ROOT,
    env: options.env ?? process.env,
  });
}

export async function startService(env: Record<string, string>, grpcAddress: string, nodeArgs: string[] = []): Promise<ServiceProcess> {
  const { flags, entry } = startCommand();
  const child = spawnNode(entry, [], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
    nodeArgs,
    loader: flags,
  });
  let failed = 0;
  let tail = "";
  let partial = "";
  const onData = (chunk: Buffer) => {
    const text = partial + chunk.toString();
    const lines = text.split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) {
      if (line.includes('"msg":"call failed"')) failed++;
      tail = `${tail}${line}\n`.slice(-4000);
    }
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  const copy = process.env.BENCH_SERVICE_LOG; // diagnostics: a file that gets all the service printed
  if (copy) {
    const sink = createWriteStream(copy);
    child.stdout?.pipe(sink);
    child.stderr?.pipe(sink);
  }
  let gone = false;
  void exited(child).then(() => (gone = true));
  const deadline = Date.now() + 120_000;
  while (!(await healthy(grpcAddress).catch(() => false))) {
    if (gone) throw new Error(`the service exited during start:\n${tail}${partial}`);
    if (Date.now() > deadline) throw new Error(`the service did not become healthy:\n${tail}${partial}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    child,
    pid: child.pid as number,
    failedCalls: () => failed,
    tail: () => tail + partial,
    stop: () => stopChild(child, "SIGTERM", 20_000),
  };
}
