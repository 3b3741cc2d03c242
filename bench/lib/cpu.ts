// CPU time per call, read from /proc: far steadier than throughput on a shared machine, because
// other processes' load slows a call down but does not make it cost more CPU. It tells whether a
// change made our code cheaper even when the req/s of two runs cannot be compared.
import { readdirSync, readFileSync } from "node:fs";

const TICK_MS = 10; // CLK_TCK is 100 on Linux x86-64

/** This process's CPU time so far (user + system), µs: what a generator reports of itself. */
export function ownCpuUs(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

/** utime + stime of a process (all its threads), in ms; 0 once it is gone. */
export function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS; // fields 14 and 15 of proc(5)
  } catch {
    return 0;
  }
}

/**
 * CPU of a process and its direct children (Postgres: the postmaster and its backends), in ms:
 * live children from their own stat, exited ones from the parent's cutime + cstime.
 */
export function treeCpuMs(pid: number): number {
  let total = processCpuMs(pid);
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    total += (Number(fields[13]) + Number(fields[14])) * TICK_MS; // cutime, cstime: reaped children
  } catch {
    // gone
  }
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[1]) === pid) total += (Number(fields[11]) + Number(fields[12])) * TICK_MS;
    } catch {
      // exited meanwhile
    }
  }
  return total;
}

export type CpuProbes = Record<string, () => number>;

/** Starts measuring; `stop(calls)` gives the CPU µs per call of each probe since the start. */
export function startCpuMeter(probes: CpuProbes): { stop(calls: number): Record<string, number> } {
  const start = Object.fromEntries(Object.entries(probes).map(([name, read]) => [name, read()]));
  return {
    stop(calls) {
      return Object.fromEntries(
        Object.entries(probes).map(([name, read]) => [name, calls > 0 ? Math.round(((read() - (start[name] ?? 0)) * 1000) / calls) : NaN]),
      );
    },
  };
}
