// The data plane's rows of `npm run bench` (E1–E3, see lib/edge-bench.ts) on their own:
//   node --import tsx bench/edge.ts [--quick] [--duration=S] [--rounds=N] [--only=throughput,connect,idle]
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { edgeBench, ensurePgbench, ensurePgbouncer } from "./lib/edge-bench";
import { cleanup, installExitHandlers, recordChildrenIn, removeOnExit, sweepOrphans, TEMP_PREFIX } from "./lib/processes";
import { renderTable } from "./lib/report";

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    duration: { type: "string" },
    rounds: { type: "string" },
    clients: { type: "string", default: "8" },
    scale: { type: "string", default: "10" },
    "idle-clients": { type: "string", default: "5000" },
    only: { type: "string", default: "throughput,connect,idle" },
    pgbouncer: { type: "string" },
    "edge-node-args": { type: "string", default: "" },
  },
});
const log = (line: string) => process.stderr.write(`${line}\n`);

async function main(): Promise<void> {
  installExitHandlers();
  await sweepOrphans(log);
  ensurePgbench(log);
  const dir = mkdtempSync(path.join(tmpdir(), TEMP_PREFIX));
  removeOnExit(dir);
  chmodSync(dir, 0o711); // Postgres (as `postgres`) and PgBouncer (as `nobody`) pass through
  writeFileSync(path.join(dir, "owner.pid"), String(process.pid));
  recordChildrenIn(path.join(dir, "children"));
  const { rows, checks } = await edgeBench({
    dir,
    durationS: Number(args.duration ?? (args.quick ? 3 : 15)),
    rounds: Number(args.rounds ?? (args.quick ? 1 : 3)),
    clients: Number(args.clients),
    scale: Number(args.scale),
    idleClients: Number(args["idle-clients"]),
    only: new Set(args.only.split(",") as ("throughput" | "connect" | "idle")[]),
    pgbouncer: args.pgbouncer ?? ensurePgbouncer(log),
    edgeNodeArgs: args["edge-node-args"].split(" ").filter(Boolean),
    log,
  });
  process.stdout.write(`\n${renderTable(rows, checks)}\n`);
}

main()
  .catch((err: unknown) => {
    log(`bench/edge: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  })
  .finally(() => cleanup());
