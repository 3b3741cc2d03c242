// Baseline B2: raw single-row INSERT transactions through slonik, `workers` at a time, with
// slonik's own defaults and the service's pool size, in its own process. It is what a
// CreateTenant would cost with nothing of ours around it: BEGIN, one INSERT, COMMIT.
//
//   node --import tsx bench/load/insert-loop.ts '<json config>'   → one JSON Summary on stdout
import { performance } from "node:perf_hooks";
import { createPool, createSqlTag } from "slonik";
import { z } from "zod";
import { ownCpuUs } from "../lib/cpu";
import { printResult } from "../lib/script";
import { summarize } from "../lib/stats";

export interface InsertLoopConfig {
  /** postgres:// URL of the database holding the table (created when missing). */
  url: string;
  workers: number;
  poolSize: number;
  warmupMs: number;
  durationMs: number;
}

const sql = createSqlTag({ typeAliases: { void: z.object({}).strict() } });

async function main(config: InsertLoopConfig): Promise<ReturnType<typeof summarize> & { sent: number; selfCpuUs: number }> {
  const pool = await createPool(config.url, { maximumPoolSize: config.poolSize, captureStackTrace: false });
  pool.on("error", () => {}); // errors are counted per transaction
  await pool.query(sql.typeAlias("void")`
    CREATE TABLE IF NOT EXISTS bench_b2_rows (
      name       text        NOT NULL PRIMARY KEY,
      payload    jsonb       NOT NULL DEFAULT '{}'::jsonb,
      created_at timestamptz NOT NULL DEFAULT now())`);

  const run = `${process.pid.toString(36)}${Date.now().toString(36)}`;
  let counter = 0;
  let sent = 0;
  const latencies: number[] = [];
  const errors: Record<string, number> = {};
  const t0 = performance.now();
  const measureFrom = t0 + config.warmupMs;
  const measureUntil = measureFrom + config.durationMs;

  const worker = async () => {
    while (performance.now() < measureUntil) {
      const name = `b2_${run}_${counter++}`;
      sent++;
      const started = performance.now();
      let failure: string | undefined;
      try {
        await pool.transaction(async (tx) => {
          await tx.query(sql.typeAlias("void")`INSERT INTO bench_b2_rows (name, payload) VALUES (${name}, ${sql.jsonb({ n: counter })})`);
        });
      } catch (err) {
        failure = err instanceof Error ? err.name : "error";
      }
      const end = performance.now();
      if (end < measureFrom || end > measureUntil) continue;
      if (failure) errors[failure] = (errors[failure] ?? 0) + 1;
      else latencies.push(end - started);
    }
  };
  await Promise.all(Array.from({ length: config.workers }, worker));
  await pool.end();
  return { ...summarize(latencies, config.durationMs / 1000, errors), sent, selfCpuUs: ownCpuUs() };
}

if (require.main === module) printResult("insert-loop", main(JSON.parse(process.argv[2] ?? "{}") as InsertLoopConfig));
