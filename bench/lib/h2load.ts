// h2load (nghttp2-client) as the generator for calls with a fixed body: it is C, single-threaded
// here, and cheap enough that on 2 cores the server, not the generator, is what saturates.
// Latency percentiles come from its per-request log; h2load only knows HTTP statuses, so gRPC
// outcomes are checked by the caller (a verification call and the server's failure count).
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { exited, spawnTracked } from "./processes";
import { startCpuMeter, type CpuProbes } from "./cpu";
import { summarize, type Summary } from "./stats";

export interface H2loadRun {
  url: string;
  /** Request body file (makes the method POST). */
  dataFile?: string;
  headers: Record<string, string>;
  /** Connections, and streams in flight on each (HTTP/2) — for --h1 keep streams at 1. */
  clients: number;
  streams: number;
  warmupS: number;
  durationS: number;
  h1?: boolean;
  /** Scratch path for the per-request log. */
  logFile: string;
}

export interface H2loadResult extends Summary {
  /** h2load's own throughput line (all completed requests, any status), for cross-checking. */
  reportedRps: number;
  statusCodes: Record<string, number>;
}

function which(command: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/**
 * Installs `command` from Debian's `pkg` when it is missing (apt-get update first if that fails);
 * `present` says whether it is there (default: on PATH).
 */
export function ensureTool(command: string, pkg: string, log: (line: string) => void, present = () => which(command)): void {
  if (present()) return;
  log(`${command} missing: apt-get install -y ${pkg}`);
  const install = () => execFileSync("apt-get", ["install", "-y", pkg], { stdio: "ignore", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
  try {
    install();
  } catch {
    execFileSync("apt-get", ["update"], { stdio: "ignore" });
    install();
  }
  if (!present()) throw new Error(`${command} could not be installed (apt-get install ${pkg})`);
}

export function h2loadVersion(): string {
  return execFileSync("h2load", ["--version"], { encoding: "utf8" }).trim();
}

async function h2load(args: string[]): Promise<string> {
  const child = spawnTracked("h2load", args);
  let out = "";
  child.stdout?.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr?.on("data", (c: Buffer) => (out += c.toString()));
  const code = await exited(child);
  if (code !== 0) throw new Error(`h2load exited with ${code}:\n${out}`);
  return out;
}

/**
 * A warm-up run, then the measured run; `probes` (CPU readings, see cpu.ts) are read around the
 * measured run only, and divided by the requests it completed.
 */
export async function runH2load(run: H2loadRun, probes: CpuProbes = {}): Promise<H2loadResult> {
  const args = ["-c", String(run.clients), "-m", String(run.streams), "-t", "1"];
  if (run.h1) args.push("--h1");
  if (run.dataFile) args.push("-d", run.dataFile);
  for (const [k, v] of Object.entries(run.headers)) args.push("-H", `${k}: ${v}`);
  if (run.warmupS > 0) await h2load([...args, "-D", String(run.warmupS), run.url]);
  rmSync(run.logFile, { force: true });
  const meter = startCpuMeter(probes);
  const out = await h2load([...args, "-D", String(run.durationS), "--log-file", run.logFile, run.url]);
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? NaN);
  const cpuUsPerCall = meter.stop(num(/(\d+) done/));

  // Log rows: start (µs since epoch), HTTP status, duration (µs). h2load 1.52 logs status 0 for
  // HTTP/2 streams in timing mode and -1 for failed streams, so success and failure come from its
  // summary lines, and latencies from the log.
  const latencies: number[] = [];
  for (const line of readFileSync(run.logFile, "utf8").split("\n")) {
    const [, status, micros] = line.split("\t");
    if (status === undefined || micros === undefined) continue;
    if (status === "0" || /^[23]\d\d$/.test(status)) latencies.push(Number(micros) / 1000);
  }
  rmSync(run.logFile, { force: true });
  const statusCodes: Record<string, number> = {};
  for (const cls of ["2xx", "3xx", "4xx", "5xx"]) statusCodes[cls] = num(new RegExp(`(\\d+) ${cls}`));
  // "failed" counts every request without a 2xx/3xx answer, errored and timed-out ones included.
  const failed = num(/(\d+) failed/);
  const errors: Record<string, number> = failed > 0 ? { failed } : {};
  const reportedRps = num(/finished in [\d.]+m?s, ([\d.]+) req\/s/);
  return { ...summarize(latencies, run.durationS, errors), reportedRps, statusCodes, cpuUsPerCall };
}
