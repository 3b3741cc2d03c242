// `npm run soak [-- --minutes=N]`: the service under a steady mixed load for N minutes (default
// 10), over gRPC and REST, creates and deletes included, to show what a long run does to it:
// resident memory and open file descriptors at the start and at the end, every unexpected error,
// and the latency p99 of the first minute against the last. Never part of `npm test`.
//
// What runs is what ships: the embedded Postgres (src/db/embedded.ts) and the service as
// `npm start` runs it (its bundle), each its own process, both in a private temp directory that
// is removed at the end (or on Ctrl-C). Results go to bench/results/soak-latest.json.
import { mkdtempSync, readdirSync, writeFileSync, chmodSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { status } from "@grpc/grpc-js";
import pino from "pino";
import { CreateDatabaseRequest, DatabaseServiceService, DeleteDatabaseRequest } from "../gen/qod/v1/database";
import { CreatePoolRequest, DeletePoolRequest, PoolServiceService } from "../gen/qod/v1/pool";
import { CreateTenantRequest, DeleteTenantRequest, GetTenantRequest, ListTenantsRequest, TenantServiceService } from "../gen/qod/v1/tenant";
import { freePort, startEmbeddedPostgres } from "../src/db/embedded";
import { codeName, RawClient } from "./lib/client";
import { cleanup, installExitHandlers, onCleanup, recordChildrenIn, REPO_ROOT, removeOnExit, sweepOrphans, TEMP_PREFIX } from "./lib/processes";
import { memoryOf, startService } from "./lib/service";
import { quantile } from "./lib/stats";

const HELP = `npm run soak -- [options]
  --minutes=N       how long the load runs (default 10)
  --workers=N       concurrent clients, half gRPC and half REST (default 8)
  --help            this text`;

const API_KEY = "soak-api-key-0123456789abcdef";
const WINDOW_MS = 60_000;

interface Options {
  minutes: number;
  workers: number;
}

function parseOptions(argv: readonly string[]): Options {
  const options: Options = { minutes: 10, workers: 8 };
  for (const arg of argv) {
    const [key, value] = arg.replace(/^--/, "").split("=");
    if (key === "help") {
      process.stdout.write(`${HELP}\n`);
      process.exit(0);
    }
    const number = Number(value);
    if ((key === "minutes" || key === "workers") && number > 0) options[key] = number;
    else throw new Error(`unknown or bad option ${arg}\n${HELP}`);
  }
  return options;
}

const log = (line: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);

/** Open file descriptors of a live process. */
const openFds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

interface Sample {
  at: number;
  ms: number;
  op: string;
  outcome: string;
}

/** One operation of the mix: its name and how it is done on each surface. */
type Op = (worker: number, n: number) => Promise<string>;

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  installExitHandlers();
  await sweepOrphans(log);
  const tmp = mkdtempSync(path.join(tmpdir(), TEMP_PREFIX));
  removeOnExit(tmp);
  chmodSync(tmp, 0o711); // as root, Postgres runs as `postgres` and must pass through
  recordChildrenIn(path.join(tmp, "children"));

  log("starting embedded Postgres");
  const pg = await startEmbeddedPostgres(path.join(tmp, "pg"), pino({ level: "silent" }), { port: 0 });
  onCleanup("postgres", () => pg.stop());
  const grpcPort = await freePort();
  const httpPort = await freePort();
  const grpcAddress = `127.0.0.1:${grpcPort}`;
  const base = `http://127.0.0.1:${httpPort}`;
  const service = await startService(
    {
      QOD_HOST: "127.0.0.1",
      QOD_GRPC_PORT: String(grpcPort),
      QOD_HTTP_PORT: String(httpPort),
      QOD_SUPAVISOR_HTTP_PORT: "0",
      QOD_METRICS_PORT: "0",
      QOD_DATA_DIR: path.join(tmp, "service"),
      QOD_PG_HOST: pg.target.host,
      QOD_PG_PORT: String(pg.target.port),
      QOD_PG_USER: pg.target.user,
      QOD_PG_PASSWORD: pg.target.password ?? "",
      QOD_API_KEY: API_KEY,
      QOD_LOG_LEVEL: "info",
      QOD_BCRYPT_COST: "8",
      QOD_SHUTDOWN_GRACE_MS: "10000",
    },
    grpcAddress,
    [],
  );
  onCleanup("service", async () => void (await service.stop()));
  log(`service ${service.pid} on gRPC ${grpcPort}, HTTP ${httpPort}; ${options.workers} workers for ${options.minutes} min`);

  const grpc = new RawClient(grpcAddress, { "x-api-key": API_KEY });
  onCleanup("client", () => grpc.close());
  const call = async (path: string, bytes: Uint8Array) => {
    const res = await grpc.call(path, bytes, 60_000);
    return res.code === status.OK ? "OK" : `${codeName(res.code)}: ${res.details}`;
  };
  const post = async (route: string, body: unknown) => {
    const res = await fetch(`${base}${route}`, { method: "POST", headers: { "x-api-key": API_KEY, "content-type": "application/json" }, body: JSON.stringify(body) });
    const text = await res.text();
    return res.status === 200 ? "OK" : `HTTP ${res.status}: ${text.slice(0, 200)}`;
  };
  const get = async (route: string) => {
    const res = await fetch(`${base}${route}`, { headers: { "x-api-key": API_KEY } });
    const text = await res.text();
    return res.status === 200 ? "OK" : `HTTP ${res.status}: ${text.slice(0, 200)}`;
  };

  // A tenant every read hits, with a database and a pool.
  const home = "soak";
  const setup = [
    await call(TenantServiceService.createTenant.path, CreateTenantRequest.encode(CreateTenantRequest.fromPartial({ name: home })).finish()),
    await call(DatabaseServiceService.createDatabase.path, CreateDatabaseRequest.encode(CreateDatabaseRequest.fromPartial({ tenant: home, name: "main" })).finish()),
  ];
  if (setup.some((outcome) => outcome !== "OK")) throw new Error(`setup failed: ${setup.join("; ")}`);

  /** The mix: reads most, then churn of tenants, memory databases and pools, and now and then a provisioned database dropped again. */
  const ops: [string, number, Op][] = [
    ["grpc GetTenant", 30, () => call(TenantServiceService.getTenant.path, GetTenantRequest.encode({ name: home }).finish())],
    ["rest GetTenant", 20, () => get(`/api/tenant/get?name=${home}`)],
    ["grpc ListTenants", 8, () => call(TenantServiceService.listTenants.path, ListTenantsRequest.encode({ pageSize: 20, pageToken: "" }).finish())],
    ["rest ListDatabases", 8, () => get(`/api/database/list?tenant=${home}`)],
    [
      "grpc tenant create+delete",
      6,
      async (w, n) => {
        const name = `soak_g${w}_${n}`;
        const created = await call(TenantServiceService.createTenant.path, CreateTenantRequest.encode(CreateTenantRequest.fromPartial({ name })).finish());
        return created === "OK" ? call(TenantServiceService.deleteTenant.path, DeleteTenantRequest.encode({ name }).finish()) : created;
      },
    ],
    [
      "rest tenant create+delete",
      6,
      async (w, n) => {
        const name = `soak_r${w}_${n}`;
        const created = await post("/api/tenant/create", { name });
        return created === "OK" ? post("/api/tenant/delete", { name }) : created;
      },
    ],
    [
      "grpc memory db + pool, created and deleted",
      6,
      async (w, n) => {
        const name = `m${w}_${n}`;
        const steps = [
          () => call(DatabaseServiceService.createDatabase.path, CreateDatabaseRequest.encode(CreateDatabaseRequest.fromPartial({ tenant: home, name, kind: "memory" })).finish()),
          () => call(PoolServiceService.createPool.path, CreatePoolRequest.encode(CreatePoolRequest.fromPartial({ tenant: home, tenantDb: name, pool: `p${name}`, size: 2 })).finish()),
          () => call(PoolServiceService.deletePool.path, DeletePoolRequest.encode({ tenant: home, pool: `p${name}` }).finish()),
          () => call(DatabaseServiceService.deleteDatabase.path, DeleteDatabaseRequest.encode({ tenant: home, name, dropDatabase: false }).finish()),
        ];
        for (const step of steps) {
          const outcome = await step();
          if (outcome !== "OK") return outcome;
        }
        return "OK";
      },
    ],
    [
      "rest ducklake db, provisioned and dropped",
      2,
      async (w, n) => {
        const name = `d${w}_${n}`;
        const created = await post("/api/database/create", { tenant: home, name });
        return created === "OK" ? post("/api/database/delete", { tenant: home, name, dropDatabase: true }) : created;
      },
    ],
    ["rest login", 2, () => post("/api/auth/login", { username: "admin", password: "admin" })],
  ];
  const totalWeight = ops.reduce((sum, [, weight]) => sum + weight, 0);
  const pick = (r: number) => {
    let left = r * totalWeight;
    for (const op of ops) if ((left -= op[1]) < 0) return op;
    return ops[0];
  };

  const samples: Sample[] = [];
  const started = performance.now();
  const endAt = started + options.minutes * 60_000;
  let measuredStart: { rssMiB: number; fds: number } | undefined;
  const workers = Array.from({ length: options.workers }, async (_, w) => {
    for (let n = 0; performance.now() < endAt; n++) {
      const [name, , op] = pick(Math.random());
      const t = performance.now();
      let outcome: string;
      try {
        outcome = await op(w, n);
      } catch (err) {
        outcome = `threw ${err instanceof Error ? err.message : String(err)}`;
      }
      samples.push({ at: t - started, ms: performance.now() - t, op: name, outcome });
    }
  });
  // The start is taken after a warm-up (the first minute, or half a short run) of caches, JIT and pools.
  const startProbe = setTimeout(() => {
    measuredStart = { rssMiB: memoryOf(service.pid).rssMiB, fds: openFds(service.pid) };
    log(`after the warm-up: RSS ${measuredStart.rssMiB.toFixed(1)} MiB, ${measuredStart.fds} open fds, ${samples.length} calls`);
  }, Math.min(WINDOW_MS, options.minutes * 30_000));
  const progress = setInterval(() => {
    const errors = samples.filter((s) => s.outcome !== "OK").length;
    log(`${samples.length} calls, ${errors} unexpected errors, RSS ${memoryOf(service.pid).rssMiB.toFixed(1)} MiB, ${openFds(service.pid)} fds, load ${loadavg()[0]?.toFixed(2)}`);
  }, 60_000);
  await Promise.all(workers);
  clearTimeout(startProbe);
  clearInterval(progress);
  const end = { rssMiB: memoryOf(service.pid).rssMiB, fds: openFds(service.pid) };

  const window = (from: number, to: number) => Float64Array.from(samples.filter((s) => s.at >= from && s.at < to && s.outcome === "OK").map((s) => s.ms)).sort();
  const duration = options.minutes * 60_000;
  const first = window(0, Math.min(WINDOW_MS, duration / 2));
  const last = window(Math.max(duration - WINDOW_MS, duration / 2), duration);
  const unexpected = samples.filter((s) => s.outcome !== "OK");
  const byOp: Record<string, { calls: number; errors: number; p99: number }> = {};
  for (const [name] of ops) {
    const mine = samples.filter((s) => s.op === name);
    byOp[name] = { calls: mine.length, errors: mine.filter((s) => s.outcome !== "OK").length, p99: quantile(Float64Array.from(mine.map((s) => s.ms)).sort(), 0.99) };
  }
  const result = {
    at: new Date().toISOString(),
    minutes: options.minutes,
    workers: options.workers,
    calls: samples.length,
    unexpectedErrors: unexpected.length,
    firstErrors: unexpected.slice(0, 10).map((s) => `${s.op}: ${s.outcome}`),
    rssMiB: { start: measuredStart?.rssMiB, end: end.rssMiB },
    openFds: { start: measuredStart?.fds, end: end.fds },
    p99Ms: { firstMinute: quantile(first, 0.99), lastMinute: quantile(last, 0.99) },
    p50Ms: { firstMinute: quantile(first, 0.5), lastMinute: quantile(last, 0.5) },
    serviceFailedCallLines: service.failedCalls(),
    loadAverage: loadavg(),
    byOp,
  };
  writeFileSync(path.join(REPO_ROOT, "bench", "results", "soak-latest.json"), `${JSON.stringify(result, null, 2)}\n`);
  const ratio = result.p99Ms.lastMinute / result.p99Ms.firstMinute;
  log(`calls ${result.calls}, unexpected errors ${result.unexpectedErrors}${unexpected.length > 0 ? ` (first: ${result.firstErrors[0]})` : ""}`);
  log(`RSS ${result.rssMiB.start?.toFixed(1)} → ${result.rssMiB.end.toFixed(1)} MiB; open fds ${result.openFds.start} → ${result.openFds.end}`);
  log(`p99 ${result.p99Ms.firstMinute.toFixed(1)} ms (first minute) → ${result.p99Ms.lastMinute.toFixed(1)} ms (last minute), ×${ratio.toFixed(2)}`);
  log(`results in bench/results/soak-latest.json`);
  await cleanup();
  process.exit(result.unexpectedErrors === 0 && ratio <= 1.5 ? 0 : 1);
}

main().catch(async (err: unknown) => {
  process.stderr.write(`soak failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  await cleanup();
  process.exit(2);
});
