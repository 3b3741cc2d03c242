// The result table and the JSON file. A row is one measured scenario; a check compares it with
// its baseline (ratios in the same run) and says pass or fail.
import { execFileSync } from "node:child_process";
import { cpus, loadavg, release, totalmem } from "node:os";
import { REPO_ROOT } from "./processes";
import { errorCount, type Summary } from "./stats";

export interface Row {
  id: string;
  scenario: string;
  /** The generator and its concurrency, e.g. "h2load 4×8". */
  generator: string;
  state: "ok" | "n/a" | "error" | "skipped";
  /** Why n/a or error, or what was checked. */
  note?: string;
  summary?: Summary;
  /** Extra figures (e.g. peak RSS), shown in the throughput column when there is no summary. */
  value?: string;
  /** req/s as a share of the diagnostic row that does the same database work with none of our code. */
  floor?: { row: string; ratio: number };
  /** The service's resident set right after the row, and its peak so far (MB). */
  serviceMemoryMB?: { rss: number; peak: number };
}

export interface Check {
  row: string;
  /** What is compared, e.g. "rps / B1 rps". */
  measure: string;
  ratio: number | undefined;
  /** e.g. "≥ 0.60" */
  target: string;
  pass: boolean | undefined;
}

export interface MachineInfo {
  date: string;
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  node: string;
  loadAvgStart: number[];
  loadAvgEnd?: number[];
  gitCommit: string;
  gitDirty: boolean;
  tools: Record<string, string>;
}

export function machineInfo(tools: Record<string, string>): MachineInfo {
  const git = (args: string[]) => {
    try {
      return execFileSync("git", ["-C", REPO_ROOT, ...args], { encoding: "utf8" }).trim();
    } catch {
      return "";
    }
  };
  return {
    date: new Date().toISOString(),
    cpuModel: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    node: process.version,
    loadAvgStart: loadavg().map((v) => Math.round(v * 100) / 100),
    gitCommit: git(["rev-parse", "--short", "HEAD"]),
    gitDirty: git(["status", "--porcelain", "--", "src", "bench", "package.json", ":!bench/results"]) !== "",
    tools,
  };
}

const fmt = (n: number | undefined, digits = 1): string => (n === undefined || !Number.isFinite(n) ? "" : n.toFixed(digits));
const fmtRps = (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? "-" : n >= 100 ? Math.round(n).toString() : n.toFixed(1));

function pad(cells: string[][]): string {
  const widths = cells[0].map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  return cells.map((r) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd()).join("\n");
}

export function renderTable(rows: readonly Row[], checks: readonly Check[]): string {
  const header = ["id", "scenario", "generator", "req/s", "p50 ms", "p99 ms", "errors", "app µs", "pg µs", "vs floor", "ratio", "target", "result"];
  const lines = [header];
  for (const row of rows) {
    const s = row.summary;
    const check = checks.find((c) => c.row === row.id);
    const result = row.state === "n/a" ? "n/a" : row.state === "error" ? "ERROR" : check?.pass === undefined ? "" : check.pass ? "pass" : "FAIL";
    lines.push([
      row.id,
      row.scenario,
      row.generator,
      s ? fmtRps(s.rps) : (row.value ?? ""),
      s ? fmt(s.p50, 2) : "",
      s ? fmt(s.p99, 2) : "",
      s ? String(errorCount(s)) : "",
      fmt(s?.cpuUsPerCall?.app, 0),
      fmt(s?.cpuUsPerCall?.pg, 0),
      row.floor ? `${row.floor.ratio.toFixed(2)} ×${row.floor.row}` : "",
      check?.ratio === undefined ? "" : `${check.ratio.toFixed(2)} ${check.measure}`,
      check ? check.target : "",
      result,
    ]);
  }
  const notes = rows.filter((r) => r.note).map((r) => `  ${r.id}: ${r.state === "ok" ? "" : `${r.state} — `}${r.note}`);
  const legend =
    "app µs / pg µs: CPU time per call of the serving process (service, bare server, or B2's slonik client) and of Postgres.\n" +
    "vs floor: req/s as a share of the row doing the same database work behind bare grpc-js, with none of our code.";
  return pad(lines) + `\n${legend}` + (notes.length > 0 ? `\n\n${notes.join("\n")}` : "");
}
