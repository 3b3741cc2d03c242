// Every process the bench starts is tracked here, so a normal end, an error or Ctrl-C stops all
// of them and removes the temporary directory. Cleanups run once, last registered first.
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { appendFileSync, existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

const children = new Set<ChildProcess>();
const cleanups: Array<{ name: string; run: () => Promise<void> | void }> = [];
/** Paths removed synchronously on exit even when the async cleanups could not finish. */
const tempPaths = new Set<string>();
/** Postgres postmaster pids to stop synchronously on exit if still alive. */
const postmasters = new Set<number>();

export { REPO_ROOT } from "../../tools/start-command";
export const TEMP_PREFIX = "qod-bench-";

import { parentPid, processAlive as alive } from "../../src/db/embedded";

export { alive };

let childrenFile: string | undefined;

/** Where to note every child's pid, so a later run can stop them if this one is SIGKILLed. */
export function recordChildrenIn(file: string): void {
  childrenFile = file;
}

export function spawnTracked(command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], ...options });
  children.add(child);
  child.once("exit", () => children.delete(child));
  if (childrenFile && child.pid !== undefined) appendFileSync(childrenFile, `${child.pid}\t${path.basename(command)}\n`);
  return child;
}

/** Resolves with the exit code (or signal) once `child` has exited. */
export function exited(child: ChildProcess): Promise<number | string> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode ?? child.signalCode ?? -1);
  return new Promise((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal ?? -1)));
}

/** Sends `signal`, then SIGKILL if the child has not exited after `graceMs`. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM", graceMs = 15_000): Promise<number | string> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode ?? child.signalCode ?? -1;
  const done = exited(child);
  child.kill(signal);
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  try {
    return await done;
  } finally {
    clearTimeout(timer);
  }
}

export function onCleanup(name: string, run: () => Promise<void> | void): void {
  cleanups.push({ name, run });
}

export function removeOnExit(dir: string): void {
  tempPaths.add(dir);
}

export function stopPostmasterOnExit(pid: number): void {
  postmasters.add(pid);
}

let cleaning: Promise<void> | undefined;

/** Runs the registered cleanups (last first), then stops any child still alive. Idempotent. */
export function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length > 0) {
      const { name, run } = cleanups.pop()!;
      try {
        await run();
      } catch (err) {
        process.stderr.write(`bench: cleanup "${name}" failed: ${err instanceof Error ? err.message : String(err)}\n`);
      }
    }
    await Promise.all([...children].map((child) => stopChild(child, "SIGTERM", 5_000)));
    for (const dir of tempPaths) rmSync(dir, { recursive: true, force: true });
    tempPaths.clear();
  })();
  return cleaning;
}

/** Last resort when the process exits before the async cleanup ended: kill, stop, remove. */
function exitSync(): void {
  for (const child of children) if (child.pid !== undefined && alive(child.pid)) child.kill("SIGKILL");
  for (const pid of postmasters) if (alive(pid)) process.kill(pid, "SIGQUIT"); // immediate shutdown
  for (const dir of tempPaths) rmSync(dir, { recursive: true, force: true });
}

/** Installs the signal and exit handlers. Ctrl-C and SIGTERM clean up, then exit 130/143. */
export function installExitHandlers(): void {
  process.on("exit", exitSync);
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129]] as const) {
    process.on(signal, () => {
      process.stderr.write(`\nbench: ${signal}, stopping everything it started...\n`);
      const force = setTimeout(() => process.exit(code), 30_000);
      force.unref();
      void cleanup().finally(() => process.exit(code));
    });
  }
}

/**
 * A bench killed with SIGKILL leaves its Postgres (and temp directory) behind. Stops such orphans
 * (a postmaster whose parent is gone) of earlier runs and removes their directories; leaves
 * directories of benches that are still running alone.
 */
export async function sweepOrphans(log: (line: string) => void): Promise<void> {
  for (const entry of readdirSync(tmpdir())) {
    if (!entry.startsWith(TEMP_PREFIX)) continue;
    const dir = path.join(tmpdir(), entry);
    const pidFile = path.join(dir, "pg", "pg", "postmaster.pid");
    const ownerFile = path.join(dir, "owner.pid");
    const owner = existsSync(ownerFile) ? Number(readFileSync(ownerFile, "utf8")) : 0;
    if (owner > 0 && alive(owner)) continue; // another bench is running
    // Children of a bench that was SIGKILLed: still running the command it noted for them.
    const childrenList = path.join(dir, "children");
    if (existsSync(childrenList)) {
      for (const line of readFileSync(childrenList, "utf8").split("\n")) {
        const [pidText, command] = line.split("\t");
        const pid = Number(pidText);
        if (!(pid > 0) || !command || !alive(pid)) continue;
        let cmdline = "";
        try {
          cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
        } catch {
          continue;
        }
        if (!cmdline.includes(command) || parentPid(pid) !== 1) continue; // reused pid, or not orphaned
        log(`stopping the orphaned ${command} ${pid} of an earlier bench run`);
        process.kill(pid, "SIGKILL");
      }
    }
    if (existsSync(pidFile)) {
      const pid = Number(readFileSync(pidFile, "utf8").split("\n")[0]);
      if (pid > 0 && alive(pid)) {
        const ppid = parentPid(pid);
        if (ppid !== undefined && ppid > 1 && alive(ppid) && ppid !== owner) continue; // not ours to stop
        log(`stopping the orphaned Postgres ${pid} of an earlier bench run (${dir})`);
        process.kill(pid, "SIGINT");
        for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
        if (alive(pid)) process.kill(pid, "SIGQUIT");
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
}
