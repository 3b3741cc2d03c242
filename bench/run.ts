// `npm run bench`: the service against its physical limits, measured in one run.
// See bench/README.md for how to run it and read the table.
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import path from "node:path";
import pino from "pino";
import { z } from "zod";
import {
  CreateDatabaseRequest,
  DatabaseServiceService,
  ListDatabasesRequest,
  ListDatabasesResponse,
} from "../gen/qod/v1/database";
import {
  CreateTenantRequest,
  GetTenantRequest,
  Tenant,
  ListTenantsRequest,
  ListTenantsResponse,
  TenantServiceService,
} from "../gen/qod/v1/tenant";
import { freePort, startEmbeddedPostgres } from "../src/db/embedded";
import { migrate } from "../src/db/migrate";
import { createPool, pgUrl } from "../src/db/pool";
import { sql } from "../src/db/sql";
import { status } from "@grpc/grpc-js";
import type { GrpcLoadConfig } from "./load/grpc-load";
import type { InsertLoopConfig } from "./load/insert-loop";
import { b3Script, renderCatalogSql, runPsql } from "./lib/catalog-sql";
import { codeName, RawClient } from "./lib/client";
import { grpcFrame } from "./lib/grpc-frame";
import { edgeBench, ensurePgbench, ensurePgbouncer } from "./lib/edge-bench";
import { ensureTool, h2loadVersion, runH2load, type H2loadResult } from "./lib/h2load";
import {
  cleanup,
  exited,
  installExitHandlers,
  onCleanup,
  recordChildrenIn,
  REPO_ROOT,
  removeOnExit,
  stopChild,
  stopPostmasterOnExit,
  sweepOrphans,
  TEMP_PREFIX,
} from "./lib/processes";
import { summarizeProfile } from "./profile";
import { processCpuMs, startCpuMeter, treeCpuMs, type CpuProbes } from "./lib/cpu";
import { machineInfo, renderTable, type Check, type Row } from "./lib/report";
import { countRows, seedDatabases, seedTenants, tenantName } from "./lib/seed";
import { startCommand } from "../tools/start-command";
import { memoryOf, spawnNode, startService, type ServiceProcess } from "./lib/service";
import { errorCount, summarize, type Summary } from "./lib/stats";

// ---------------------------------------------------------------------------------------------
// Options

const HELP = `npm run bench -- [options]
  --quick             short runs (1 s warm-up, 3 s measured, 5 creates): to check the harness
  --warmup=S          warm-up seconds per load run (default 2)
  --duration=S        measured seconds per load run (default 8)
  --connections=N     HTTP/2 connections per gRPC run (default 4)
  --streams=N         calls in flight per connection (default 8); REST uses connections×streams
                      HTTP/1.1 connections, B2 as many workers
  --creates=N         CreateDatabase and B3 calls measured one at a time (default 10)
  --burst=N           CreateDatabase calls sent at once (default 50)
  --pool-size=N       the service's QOD_PG_POOL_SIZE, also B2's pool (default: the service default, 10)
  --only=a,b          run only these scenarios (ids, case-insensitive: b1,layers,gettenant,listtenants,
                      rest,createtenant,b2,listdatabases,b3,createdatabase, and the data plane's
                      e1 (pgbench -S), e2 (pgbench -C -S), e3 (5,000 idle sessions) or edge for all three)
  --edge-rounds=N     rounds of the data plane's pgbench runs, the median reported (default 3)
  --idle-clients=N    sessions E3 holds open through the edge (default 5000)
  --profile           run the service with --cpu-prof; the profile and its summary go to
                      bench/results/profiles/ (combine with --only to profile one path)
  --deadline=S        the deadline (grpc-timeout) every gRPC call carries, seconds (default 30; 0: none)
  --log-level=L       the service's QOD_LOG_LEVEL (default info, the shipped default)
  --node-args="…"     extra node flags for the service (it otherwise runs with npm start's flags)
  --out=FILE          result file (default bench/results/latest.json)`;

function parseOptions(argv: string[]) {
  const raw = new Map<string, string>();
  for (const arg of argv) {
    if (arg === "-h" || arg === "--help") {
      process.stdout.write(`${HELP}\n`);
      process.exit(0);
    }
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!m) throw new Error(`unknown argument ${arg}\n${HELP}`);
    raw.set(m[1], m[2] ?? "true");
  }
  const known = ["quick", "warmup", "duration", "connections", "streams", "creates", "burst", "pool-size", "only", "profile", "log-level", "out", "node-args", "deadline", "edge-rounds", "idle-clients"];
  for (const key of raw.keys()) if (!known.includes(key)) throw new Error(`unknown option --${key}\n${HELP}`);
  const quick = raw.get("quick") === "true";
  const int = (key: string, fallback: number) => {
    const v = raw.get(key);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${key} must be a positive number`);
    return n;
  };
  const only = raw.get("only")?.toLowerCase().split(",").filter(Boolean);
  return {
    quick,
    warmupS: int("warmup", quick ? 1 : 2),
    durationS: int("duration", quick ? 3 : 8),
    connections: int("connections", 4),
    streams: int("streams", 8),
    creates: int("creates", quick ? 5 : 10),
    burst: int("burst", 50),
    poolSize: raw.has("pool-size") ? int("pool-size", 10) : undefined,
    only,
    profile: raw.get("profile") === "true",
    logLevel: raw.get("log-level") ?? "info",
    deadlineS: raw.get("deadline") === "0" ? 0 : int("deadline", 30),
    nodeArgs: (raw.get("node-args") ?? "").split(/\s+/).filter(Boolean),
    edgeRounds: int("edge-rounds", quick ? 1 : 3),
    idleClients: int("idle-clients", 5000),
    out: path.resolve(raw.get("out") ?? path.join(REPO_ROOT, "bench", "results", "latest.json")),
  };
}

type Options = ReturnType<typeof parseOptions>;

// ---------------------------------------------------------------------------------------------
// Helpers

const started = Date.now();
const log = (line: string) => process.stderr.write(`[bench ${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${line}\n`);
const quiet = pino({ level: "silent" });
const API_KEY = "bench-api-key-0123456789abcdef";
const TENANTS_SMALL = 100;
const TENANTS_LARGE = 10_000;
const DATABASE_ROWS = 100_000;
const PROBE_TENANT = tenantName(42);
/** The database B1+tx writes to (migrated like the state database). */
const TX_DATABASE = "qod_bench_tx";
/** Ten ASCII digits inside a name, replaced by a counter on each call. */
const PLACEHOLDER = "0000000000";

async function waitForLine(child: ReturnType<typeof spawnNode>, pattern: RegExp, timeoutMs = 30_000): Promise<RegExpExecArray> {
  let out = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}:\n${out}`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = pattern.exec(out);
      if (m) {
        clearTimeout(timer);
        child.stdout?.off("data", onData);
        child.stdout?.resume();
        resolve(m);
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", (c: Buffer) => (out += c.toString()));
    void exited(child).then((code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before printing ${pattern}:\n${out}`));
    });
  });
}

/**
 * Runs a node generator script in its own process and parses the JSON line it prints. `probes`
 * (CPU of other processes, see lib/cpu.ts) are read around the run and divided by the calls it
 * sent; the generator adds its own CPU per call (`self`).
 */
async function runNodeJson<T extends { sent: number; selfCpuUs?: number }>(script: string, config: object, probes: CpuProbes = {}): Promise<T> {
  const meter = startCpuMeter(probes);
  const child = spawnNode(script, [JSON.stringify(config)]);
  let out = "";
  let err = "";
  child.stdout?.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr?.on("data", (c: Buffer) => (err += c.toString()));
  const code = await exited(child);
  if (code !== 0) throw new Error(`${script} exited with ${code}: ${err.trim()}`);
  const result = JSON.parse(out.trim().split("\n").pop() ?? "{}") as T;
  const cpuUsPerCall = meter.stop(result.sent);
  if (result.selfCpuUs !== undefined && result.sent > 0) cpuUsPerCall.self = Math.round(result.selfCpuUs / result.sent);
  return { ...result, cpuUsPerCall };
}

type GrpcLoadResult = Summary & { sent: number; okTotal: number };

// ---------------------------------------------------------------------------------------------
// The run

async function main(opts: Options): Promise<number> {
  const wanted = (id: string) => !opts.only || opts.only.includes(id.toLowerCase());
  const rows: Row[] = [];
  const checks: Check[] = [];
  const results: Record<string, Summary | undefined> = {};
  const inFlight = opts.connections * opts.streams;
  const h2 = `h2load ${opts.connections}×${opts.streams}`;
  const nodeGen = `node-h2 ${opts.connections}×${opts.streams}`;

  log(`bench: ${opts.quick ? "QUICK " : ""}${opts.warmupS}s warm-up + ${opts.durationS}s per load run, ${inFlight} calls in flight`);
  ensureTool("h2load", "nghttp2-client", log);
  ensureTool("psql", "postgresql-client", log); // B3; any client major works for plain SQL
  await sweepOrphans(log);
  const psql = "psql";
  const tools: Record<string, string> = { h2load: h2loadVersion() };
  try {
    tools.psql = execFileSync(psql, ["--version"], { encoding: "utf8" }).trim();
  } catch {
    tools.psql = "missing";
  }

  const machine = machineInfo(tools);

  // A private temp directory: Postgres data, the service's data dir, request files.
  const tmp = mkdtempSync(path.join(tmpdir(), TEMP_PREFIX));
  removeOnExit(tmp);
  chmodSync(tmp, 0o711); // as root, Postgres runs as `postgres` and must pass through
  writeFileSync(path.join(tmp, "owner.pid"), String(process.pid));
  recordChildrenIn(path.join(tmp, "children"));

  // Postgres: the product's embedded server (same flags as `npm start`), owned by the bench so it
  // outlives nothing: stopped in cleanup, or SIGQUIT on a hard exit.
  log("starting embedded Postgres");
  const pg = await startEmbeddedPostgres(path.join(tmp, "pg"), quiet, { port: 0 });
  onCleanup("postgres", () => pg.stop());
  const postmasterPid = Number(readFileSync(path.join(tmp, "pg", "pg", "postmaster.pid"), "utf8").split("\n")[0]);
  stopPostmasterOnExit(postmasterPid);
  const target = pg.target;

  // The service, as a child process.
  const grpcPort = await freePort();
  const httpPort = await freePort();
  const grpcAddress = `127.0.0.1:${grpcPort}`;
  const profileDir = path.join(REPO_ROOT, "bench", "results", "profiles", new Date().toISOString().replace(/[:.]/g, "-"));
  const serviceEnv: Record<string, string> = {
    QOD_HOST: "127.0.0.1",
    QOD_GRPC_PORT: String(grpcPort),
    QOD_HTTP_PORT: String(httpPort),
    QOD_DATA_DIR: path.join(tmp, "service"),
    QOD_PG_HOST: target.host,
    QOD_PG_PORT: String(target.port),
    QOD_PG_USER: target.user,
    ...(target.password !== undefined && { QOD_PG_PASSWORD: target.password }),
    QOD_API_KEY: API_KEY,
    QOD_LOG_LEVEL: opts.logLevel,
    QOD_SHUTDOWN_GRACE_MS: "5000",
    // The control plane's rows; the data plane has its own (E1–E3), on an edge of its own.
    QOD_EDGE: "off",
    QOD_SUPAVISOR_HTTP_PORT: "0",
    QOD_METRICS_PORT: "0",
    ...(opts.poolSize ? { QOD_PG_POOL_SIZE: String(opts.poolSize) } : {}),
  };
  const poolSize = opts.poolSize ?? 10;
  log(`starting the service (gRPC ${grpcPort}, HTTP ${httpPort}${opts.profile ? ", CPU profile" : ""})`);
  if (opts.profile) mkdirSync(profileDir, { recursive: true });
  const serviceNodeArgs = [...opts.nodeArgs, ...(opts.profile ? ["--cpu-prof", "--cpu-prof-dir", profileDir] : [])];
  const start = startCommand();
  const serviceCommand = ["node", ...serviceNodeArgs, ...start.flags, start.entry].join(" ");
  log(`service command: ${serviceCommand}`);
  const service: ServiceProcess = await startService(serviceEnv, grpcAddress, serviceNodeArgs);
  onCleanup("service", async () => void (await service.stop()));
  const idle = memoryOf(service.pid);
  log(`service started: RSS ${((idle.rssMiB * 2 ** 20) / 1e6).toFixed(0)} MB`);
  /** CPU per call of the service (app) and of Postgres with its backends (pg). */
  const serviceProbes: CpuProbes = { app: () => processCpuMs(service.pid), pg: () => treeCpuMs(postmasterPid) };

  const state = await createPool(pgUrl(target, "qod"), quiet, { maximumPoolSize: 2 });
  onCleanup("state pool", () => state.end());
  const admin = await createPool(pgUrl(target, "postgres"), quiet, { maximumPoolSize: 1 });
  onCleanup("admin pool", () => admin.end());
  machine.tools.postgres = await admin.oneFirst(sql.type(z.object({ v: z.string() }))`SELECT version() AS v`);

  const client = new RawClient(grpcAddress, { "x-api-key": API_KEY });
  onCleanup("client", () => client.close());
  // Every gRPC call carries the API key and, like a real client's, a deadline (grpc-timeout).
  const callHeaders: Record<string, string> = { "x-api-key": API_KEY, ...(opts.deadlineS > 0 ? { "grpc-timeout": `${opts.deadlineS}S` } : {}) };
  const headers = { "content-type": "application/grpc", te: "trailers", ...callHeaders };
  const writeFrame = (name: string, bytes: Uint8Array) => {
    const file = path.join(tmp, `${name}.bin`);
    writeFileSync(file, grpcFrame(bytes));
    return file;
  };
  const method = (def: Record<string, { path: string }>, key: string) => (def[key]).path;
  const getTenantPath = method(TenantServiceService, "getTenant");
  const listTenantsPath = method(TenantServiceService, "listTenants");
  const createTenantPath = method(TenantServiceService, "createTenant");
  const listDatabasesPath = method(DatabaseServiceService, "listDatabases");
  const createDatabasePath = method(DatabaseServiceService, "createDatabase");

  let tenantsSeeded = 0;
  const ensureTenants = async (n: number) => {
    if (tenantsSeeded >= n) return;
    log(`seeding tenants ${tenantsSeeded}…${n - 1}`);
    await seedTenants(state, tenantsSeeded, n);
    tenantsSeeded = n;
  };
  await ensureTenants(TENANTS_SMALL);

  type H2loadOptions = Partial<Parameters<typeof runH2load>[0]>;
  /** An h2load run at the run's concurrency and durations, with every gRPC call's headers. */
  const h2loadRun = (url: string, dataFile: string | undefined, probes: CpuProbes, extra: H2loadOptions = {}) =>
    runH2load({
      url,
      dataFile,
      headers,
      clients: opts.connections,
      streams: opts.streams,
      warmupS: opts.warmupS,
      durationS: opts.durationS,
      logFile: path.join(tmp, "h2load.log"),
      ...extra,
    }, probes);
  /** An h2load run against the service, bracketed by the service's own count of failed calls. */
  const h2loadService = async (url: string, dataFile: string | undefined, extra: H2loadOptions = {}): Promise<H2loadResult> => {
    const before = service.failedCalls();
    const result = await h2loadRun(url, dataFile, serviceProbes, extra);
    const failed = service.failedCalls() - before;
    if (failed > 0) result.errors = { ...result.errors, grpc_failed_calls: failed };
    return result;
  };
  const record = (row: Row) => {
    const m = memoryOf(service.pid);
    row.serviceMemoryMB = { rss: Math.round((m.rssMiB * 2 ** 20) / 1e6), peak: Math.round((m.peakMiB * 2 ** 20) / 1e6) };
    rows.push(row);
    if (row.summary) results[row.id] = row.summary;
    const s = row.summary;
    log(`${row.id}: ${row.state}${s ? ` ${s.rps.toFixed(0)} req/s p50 ${s.p50.toFixed(2)} ms p99 ${s.p99.toFixed(2)} ms errors ${errorCount(s)}${s.cpuUsPerCall ? ` cpu µs/call ${JSON.stringify(s.cpuUsPerCall)}` : ""}` : ""}${row.note ? ` (${row.note})` : ""}; service RSS ${row.serviceMemoryMB.rss} MB, peak ${row.serviceMemoryMB.peak} MB`);
  };
  const floorOf = (s: Summary, row: string) => (results[row] ? { row, ratio: s.rps / (results[row]).rps } : undefined);
  const errorRow = (id: string, scenario: string, generator: string, err: unknown): Row => ({
    id,
    scenario,
    generator,
    state: "error",
    note: err instanceof Error ? err.message.split("\n")[0] : String(err),
  });

  // Requests (the same GetTenant bytes go to B1 and the service).
  const getTenantFile = writeFrame("get-tenant", GetTenantRequest.encode({ name: PROBE_TENANT }).finish());
  const probe = await client.call(getTenantPath, GetTenantRequest.encode({ name: PROBE_TENANT }).finish());
  if (probe.code !== status.OK) throw new Error(`GetTenant verification failed: ${codeName(probe.code)} ${probe.details}`);
  if (Tenant.decode(probe.bytes).name !== PROBE_TENANT) throw new Error("GetTenant answered another tenant");

  // ---- B1: bare grpc-js, same options, same request and response bytes -----------------------
  // Plus two diagnostic layers for GetTenant: B1 + the same read through raw node-postgres, and
  // B1 + findTenantByName through slonik. Reading app µs/call down the rows splits the service's
  // cost into grpc-js, the Postgres round trip, slonik, and our own code.
  const startBare = async (mode: "noop" | "pg" | "slonik" | "tx") => {
    const port = await freePort();
    const bare = spawnNode("bench/servers/bare-grpc.ts", [
      "127.0.0.1", String(port), probe.bytes.toString("base64"), mode, pgUrl(target, mode === "tx" ? TX_DATABASE : "qod"), String(poolSize), PROBE_TENANT,
    ]);
    let failures = 0;
    bare.stderr?.on("data", (c: Buffer) => (failures += c.toString().split("fail").length - 1));
    await waitForLine(bare, /listening (\d+)/);
    const bareClient = new RawClient(`127.0.0.1:${port}`);
    const check = await bareClient.call(getTenantPath, GetTenantRequest.encode({ name: PROBE_TENANT }).finish());
    bareClient.close();
    if (check.code !== status.OK || !check.bytes.equals(probe.bytes)) throw new Error(`the bare server (${mode}) did not answer the GetTenant bytes: ${check.details}`);
    return { bare, port, probes: { app: () => processCpuMs(bare.pid as number), pg: () => treeCpuMs(postmasterPid) } as CpuProbes, failures: () => failures };
  };
  const bareRuns: Array<{ id: string; mode: "noop" | "pg" | "slonik" | "tx"; scenario: string; node: boolean; want: boolean }> = [
    { id: "B1", mode: "noop", scenario: "bare grpc-js no-op unary (GetTenant bytes)", node: false, want: wanted("b1") || wanted("gettenant") },
    { id: "B1-node", mode: "noop", scenario: "B1 with the node generator (CreateTenant's)", node: true, want: wanted("b1") || wanted("createtenant") },
    { id: "B1+pg", mode: "pg", scenario: "B1 + GetTenant's SELECT via raw node-postgres", node: false, want: wanted("layers") || wanted("gettenant") },
    { id: "B1+slonik", mode: "slonik", scenario: "B1 + findTenantByName via slonik", node: false, want: wanted("layers") || wanted("gettenant") },
    { id: "B1+tx", mode: "tx", scenario: "B1 + CreateTenant's statement (tenant + audit row)", node: true, want: wanted("layers") || wanted("createtenant") },
  ];
  // B1+tx writes its tenants into a migrated database of its own, so the state's tables keep
  // exactly the rows the scenarios below count on.
  if (bareRuns.some((r) => r.want && r.mode === "tx")) {
    await admin.query(sql.typeAlias("void")`CREATE DATABASE ${sql.identifier([TX_DATABASE])}`);
    await migrate(pgUrl(target, TX_DATABASE), quiet);
  }
  /** GetTenant calls from CreateTenant's generator (the node one), to `url`. */
  const getTenantNodeLoad = (url: string, probes: CpuProbes) =>
    runNodeJson<GrpcLoadResult>("bench/load/grpc-load.ts", {
      url,
      path: getTenantPath,
      headers: callHeaders,
      frame: grpcFrame(GetTenantRequest.encode({ name: PROBE_TENANT }).finish()).toString("base64"),
      connections: opts.connections,
      streams: opts.streams,
      warmupMs: opts.warmupS * 1000,
      durationMs: opts.durationS * 1000,
    } satisfies GrpcLoadConfig, probes);
  for (const run of bareRuns.filter((r) => r.want)) {
    const generator = run.node ? nodeGen : h2;
    let server: Awaited<ReturnType<typeof startBare>> | undefined;
    try {
      log(`${run.id}: bare grpc-js server (${run.mode})`);
      server = await startBare(run.mode);
      const s: Summary = run.node
        ? await getTenantNodeLoad(`http://127.0.0.1:${server.port}`, server.probes)
        : await h2loadRun(`http://127.0.0.1:${server.port}${getTenantPath}`, getTenantFile, run.mode === "noop" ? { app: server.probes.app } : server.probes);
      if (server.failures() > 0) s.errors = { ...s.errors, failed_reads: server.failures() };
      record({ id: run.id, scenario: run.scenario, generator, state: "ok", summary: s });
    } catch (err) {
      record(errorRow(run.id, run.scenario, generator, err));
    } finally {
      if (server) await stopChild(server.bare, "SIGTERM", 5_000);
    }
  }

  // ---- GetTenant ------------------------------------------------------------------------------
  if (wanted("gettenant")) {
    try {
      const s = await h2loadService(`http://${grpcAddress}${getTenantPath}`, getTenantFile);
      record({ id: "GetTenant", scenario: "GetTenant (gRPC)", generator: h2, state: "ok", summary: s, floor: floorOf(s, "B1+slonik") });
      checks.push(ratioCheck("GetTenant", results.GetTenant?.rps, results.B1?.rps, "×B1 rps", 0.6, ">="));
    } catch (err) {
      record(errorRow("GetTenant", "GetTenant (gRPC)", h2, err));
    }
  }
  // Diagnostic: GetTenant driven by CreateTenant's generator, to see what the generator itself
  // changes in the service's cost (compare with GetTenant above).
  if (wanted("layers") || (wanted("gettenant") && wanted("createtenant") && opts.only !== undefined)) {
    try {
      const s = await getTenantNodeLoad(`http://${grpcAddress}`, serviceProbes);
      record({ id: "GetTenant-node", scenario: "GetTenant with the node generator", generator: nodeGen, state: "ok", summary: s });
    } catch (err) {
      record(errorRow("GetTenant-node", "GetTenant with the node generator", nodeGen, err));
    }
  }

  // ---- ListTenants among 100 and among 10,000 ---------------------------------------------------
  const listTenants = async (id: string, among: number) => {
    await ensureTenants(among);
    const request = ListTenantsRequest.encode({ pageSize: 100, pageToken: "" }).finish();
    const verify = await client.call(listTenantsPath, request);
    if (verify.code !== status.OK) throw new Error(`ListTenants verification: ${codeName(verify.code)} ${verify.details}`);
    const page = ListTenantsResponse.decode(verify.bytes);
    const total = await countRows(state, "tenants");
    if (page.tenants.length !== 100 || (total > 100) !== (page.nextPageToken !== "")) {
      throw new Error(`ListTenants returned ${page.tenants.length} tenants of ${total}, next token ${page.nextPageToken ? "set" : "empty"}`);
    }
    const s = await h2loadService(`http://${grpcAddress}${listTenantsPath}`, writeFrame(`list-tenants-${among}`, request));
    record({ id, scenario: `ListTenants page of 100 among ${total}`, generator: h2, state: "ok", summary: s });
  };
  if (wanted("listtenants")) {
    try {
      await listTenants("ListTenants-100", TENANTS_SMALL);
    } catch (err) {
      record(errorRow("ListTenants-100", "ListTenants page of 100 among 100", h2, err));
    }
  }

  // ---- REST GetTenant through the embedded transcoder -----------------------------------------
  if (wanted("rest") || wanted("gettenant")) {
    const restPath = `/api/tenant/get?name=${PROBE_TENANT}`;
    const restUrl = `http://127.0.0.1:${httpPort}${restPath}`;
    const rest = `h2load --h1 ${inFlight}×1`;
    let gateway: string; // "ok", or what is wrong
    try {
      const res = await fetch(restUrl, { headers: { "x-api-key": API_KEY } });
      const body = await res.text();
      if (res.status === 404) gateway = `the gateway answers 404 for GET ${restPath} (route not there yet)`;
      else if (res.status !== 200) gateway = `GET ${restPath} answered ${res.status}: ${body.slice(0, 200)}`;
      else if (!body.includes(PROBE_TENANT)) gateway = `GET ${restPath} answered 200 without the tenant: ${body.slice(0, 200)}`;
      else gateway = "ok";
    } catch (err) {
      const code = (err as { cause?: { code?: string } }).cause?.code;
      gateway = code === "ECONNREFUSED" ? "no REST gateway listening on QOD_HTTP_PORT (not merged yet)" : `REST probe failed: ${code ?? String(err)}`;
    }
    if (gateway !== "ok") {
      const missing = gateway.includes("not merged") || gateway.includes("404");
      record({ id: "REST-GetTenant", scenario: "GetTenant over REST (JSON)", generator: rest, state: missing ? "n/a" : "error", note: gateway });
      checks.push({ row: "REST-GetTenant", measure: "×gRPC rps", ratio: undefined, target: "≥ 0.60", pass: undefined });
    } else {
      try {
        const s = await h2loadService(restUrl, undefined, { h1: true, clients: inFlight, streams: 1, headers: { "x-api-key": API_KEY } });
        record({ id: "REST-GetTenant", scenario: "GetTenant over REST (JSON)", generator: rest, state: "ok", summary: s });
        checks.push(ratioCheck("REST-GetTenant", results["REST-GetTenant"]?.rps, results.GetTenant?.rps, "×gRPC rps", 0.6, ">="));
      } catch (err) {
        record(errorRow("REST-GetTenant", "GetTenant over REST (JSON)", rest, err));
      }
    }
  }

  if (wanted("listtenants")) {
    try {
      await listTenants("ListTenants-10k", TENANTS_LARGE);
      checks.push(ratioCheck("ListTenants-10k", results["ListTenants-10k"]?.p99, results["ListTenants-100"]?.p99, "×p99 among 100", 1.5, "<="));
    } catch (err) {
      record(errorRow("ListTenants-10k", "ListTenants page of 100 among 10,000", h2, err));
    }
  }

  // ---- CreateTenant and B2 ----------------------------------------------------------------------
  if (wanted("createtenant")) {
    try {
      const verify = await client.call(createTenantPath, CreateTenantRequest.encode(CreateTenantRequest.fromPartial({ name: "bench_v_create" })).finish());
      if (verify.code !== status.OK) throw new Error(`CreateTenant verification: ${codeName(verify.code)} ${verify.details}`);
      const request = CreateTenantRequest.encode(CreateTenantRequest.fromPartial({ name: `bench_c_${PLACEHOLDER}` })).finish();
      const auditBefore = await countRows(state, "audit_log");
      const s = await runNodeJson<GrpcLoadResult>("bench/load/grpc-load.ts", {
        url: `http://${grpcAddress}`,
        path: createTenantPath,
        headers: callHeaders,
        frame: grpcFrame(request).toString("base64"),
        placeholder: PLACEHOLDER,
        connections: opts.connections,
        streams: opts.streams,
        warmupMs: opts.warmupS * 1000,
        durationMs: opts.durationS * 1000,
      } satisfies GrpcLoadConfig, serviceProbes);
      // Every OK answer must be a row and an audit row; nothing else may have been written.
      const created = await countRows(state, "tenants", sql.fragment`starts_with(name, 'bench_c_')`);
      const audited = (await countRows(state, "audit_log")) - auditBefore;
      const consistent = created === s.okTotal && audited === s.okTotal;
      record({
        floor: floorOf(s, "B1+tx"),
        id: "CreateTenant",
        scenario: "CreateTenant (tenant + audit row, one statement)",
        generator: nodeGen,
        state: consistent ? "ok" : "error",
        summary: s,
        note: consistent ? `${created} rows, ${audited} audit rows for ${s.okTotal} OK answers` : `${created} tenant rows and ${audited} audit rows for ${s.okTotal} OK answers`,
      });
    } catch (err) {
      record(errorRow("CreateTenant", "CreateTenant", nodeGen, err));
    }
  }
  if (wanted("b2") || wanted("createtenant")) {
    try {
      await admin.query(sql.typeAlias("void")`CREATE DATABASE qod_bench_b2`);
      const s = await runNodeJson<Summary & { sent: number; selfCpuUs: number }>("bench/load/insert-loop.ts", {
        url: pgUrl(target, "qod_bench_b2"),
        workers: inFlight,
        poolSize,
        warmupMs: opts.warmupS * 1000,
        durationMs: opts.durationS * 1000,
      } satisfies InsertLoopConfig, { pg: serviceProbes.pg });
      if (s.cpuUsPerCall?.self !== undefined) s.cpuUsPerCall.app = s.cpuUsPerCall.self; // the slonik client is B2's app
      record({ id: "B2", scenario: "raw slonik INSERT tx (BEGIN, INSERT, COMMIT)", generator: `slonik ${inFlight} workers, pool ${poolSize}`, state: "ok", summary: s });
    } catch (err) {
      record(errorRow("B2", "raw slonik INSERT tx", `slonik ${inFlight} workers`, err));
    }
  }
  if (wanted("createtenant")) {
    const b1 = results["B1-node"]?.rps;
    const b2 = results.B2?.rps;
    const base = b1 !== undefined && b2 !== undefined ? Math.min(b1, b2) : undefined;
    checks.push(ratioCheck("CreateTenant", results.CreateTenant?.rps, base, `×min(B1,B2) rps`, 0.5, ">="));
  }

  // ---- ListDatabases among 100,000 rows --------------------------------------------------------
  let databaseServiceUp: boolean | undefined;
  if (wanted("listdatabases")) {
    try {
      const request = ListDatabasesRequest.encode({ tenant: PROBE_TENANT, pageSize: 0, pageToken: "" }).finish();
      const first = await client.call(listDatabasesPath, request);
      if (first.code === status.UNIMPLEMENTED) {
        databaseServiceUp = false;
        record({ id: "ListDatabases", scenario: "ListDatabases of one tenant among 100,000 rows", generator: h2, state: "n/a", note: "DatabaseService answers UNIMPLEMENTED (not merged yet)" });
      } else {
        databaseServiceUp = true;
        await ensureTenants(TENANTS_LARGE);
        log(`seeding ${DATABASE_ROWS} database rows`);
        await seedDatabases(state, DATABASE_ROWS, TENANTS_LARGE);
        const verify = await client.call(listDatabasesPath, request);
        if (verify.code !== status.OK) throw new Error(`ListDatabases verification: ${codeName(verify.code)} ${verify.details}`);
        const listed = ListDatabasesResponse.decode(verify.bytes).tenantDbs.length;
        const expected = DATABASE_ROWS / TENANTS_LARGE;
        if (listed !== expected) throw new Error(`ListDatabases returned ${listed} databases, expected ${expected}`);
        const total = await countRows(state, "databases");
        const s = await h2loadService(`http://${grpcAddress}${listDatabasesPath}`, writeFrame("list-databases", request));
        record({ id: "ListDatabases", scenario: `ListDatabases (${listed}) among ${total} rows`, generator: h2, state: "ok", summary: s });
      }
    } catch (err) {
      record(errorRow("ListDatabases", "ListDatabases among 100,000 rows", h2, err));
    }
  }

  // ---- B3: CREATE DATABASE + the catalog DDL through psql --------------------------------------
  if (wanted("b3") || wanted("createdatabase")) {
    try {
      const catalogSql = renderCatalogSql({ dataPath: path.join(tmp, "lake", "b3"), encrypted: false, createdBy: "qod bench", schemas: [] });
      writeFileSync(path.join(tmp, "b3-catalog.sql"), catalogSql);
      const times: number[] = [];
      for (let i = 0; i <= opts.creates; i++) {
        const ms = await runPsql(psql, target, "postgres", b3Script(`bench_b3_${i}`, catalogSql));
        if (i > 0) times.push(ms); // the first is a warm-up
      }
      const s = summarize(times, times.reduce((a, b) => a + b, 0) / 1000);
      record({ id: "B3", scenario: "psql: CREATE DATABASE + DuckLake DDL (1 at a time)", generator: `psql ×${opts.creates}`, state: "ok", summary: s });
    } catch (err) {
      record(errorRow("B3", "psql: CREATE DATABASE + DuckLake DDL", "psql", err));
    }
  }

  // ---- CreateDatabase alone, then a burst ------------------------------------------------------
  if (wanted("createdatabase")) {
    const tenant = tenantName(1);
    /** `count` CreateDatabase calls, `streams` at a time, named `<prefix><counter>`. */
    const createDatabases = (prefix: string, streams: number, count: number) =>
      runNodeJson<GrpcLoadResult>("bench/load/grpc-load.ts", {
        url: `http://${grpcAddress}`,
        path: createDatabasePath,
        headers: callHeaders,
        frame: grpcFrame(
          CreateDatabaseRequest.encode(CreateDatabaseRequest.fromPartial({ tenant, name: `${prefix}${PLACEHOLDER}`, kind: "ducklake" })).finish(),
        ).toString("base64"),
        placeholder: PLACEHOLDER,
        connections: 1,
        streams,
        warmupMs: 0,
        count,
      } satisfies GrpcLoadConfig, serviceProbes);
    const first = await client.call(createDatabasePath, CreateDatabaseRequest.encode(CreateDatabaseRequest.fromPartial({ tenant, name: "bench_warm", kind: "ducklake" })).finish(), 120_000);
    if (first.code === status.UNIMPLEMENTED || databaseServiceUp === false) {
      const note = "DatabaseService answers UNIMPLEMENTED (not merged yet)";
      record({ id: "CreateDatabase", scenario: "CreateDatabase ducklake (1 at a time)", generator: "node-h2 1×1", state: "n/a", note });
      record({ id: `CreateDatabase-x${opts.burst}`, scenario: `CreateDatabase ducklake, ${opts.burst} at once`, generator: `node-h2 1×${opts.burst}`, state: "n/a", note });
      checks.push({ row: "CreateDatabase", measure: "×B3 p50", ratio: undefined, target: "≤ 1.50", pass: undefined });
      checks.push({ row: `CreateDatabase-x${opts.burst}`, measure: "", ratio: undefined, target: "all OK", pass: undefined });
    } else {
      try {
        if (first.code !== status.OK) throw new Error(`CreateDatabase verification: ${codeName(first.code)} ${first.details}`);
        const single = await createDatabases("bsgl", 1, opts.creates);
        record({ id: "CreateDatabase", scenario: "CreateDatabase ducklake (1 at a time)", generator: "node-h2 1×1", state: errorCount(single) === 0 ? "ok" : "error", summary: single });
        checks.push(ratioCheck("CreateDatabase", results.CreateDatabase?.p50, results.B3?.p50, "×B3 p50", 1.5, "<="));
      } catch (err) {
        record(errorRow("CreateDatabase", "CreateDatabase ducklake (1 at a time)", "node-h2 1×1", err));
      }
      const burstId = `CreateDatabase-x${opts.burst}`;
      try {
        const burst = await createDatabases("bbst", opts.burst, opts.burst);
        // All must have answered OK, and each must be a READY row with its Postgres database.
        const ready = await countRows(state, "databases", sql.fragment`starts_with(name, ${`${tenant}_bbst`}) AND status = 'READY'`);
        const inPg = await admin.oneFirst(
          sql.type(z.object({ n: z.number() }))`SELECT count(*)::int AS n FROM pg_database WHERE starts_with(datname, ${`${tenant}_bbst`})`,
        );
        const allOk = burst.ok === opts.burst && errorCount(burst) === 0 && ready === opts.burst && inPg === opts.burst;
        record({
          id: burstId,
          scenario: `CreateDatabase ducklake, ${opts.burst} at once`,
          generator: `node-h2 1×${opts.burst}`,
          state: "ok",
          summary: burst,
          note: `${burst.ok} OK, errors ${JSON.stringify(burst.errors)}, ${ready} READY rows, ${inPg} Postgres databases`,
        });
        checks.push({ row: burstId, measure: `${burst.ok}/${opts.burst} OK`, ratio: undefined, target: "all OK", pass: allOk });
      } catch (err) {
        record(errorRow(burstId, `CreateDatabase ducklake, ${opts.burst} at once`, `node-h2 1×${opts.burst}`, err));
        checks.push({ row: burstId, measure: "", ratio: undefined, target: "all OK", pass: false });
      }
    }
  }

  // ---- Peak RSS of the service over the whole run ---------------------------------------------
  const memory = memoryOf(service.pid);
  const peakMB = (memory.peakMiB * 2 ** 20) / 1e6;
  record({ id: "RSS", scenario: "service peak RSS (VmHWM) over the run", generator: "/proc", state: "ok", value: `${peakMB.toFixed(0)} MB` });
  checks.push({ row: "RSS", measure: `${peakMB.toFixed(0)} MB`, ratio: undefined, target: "≤ 200 MB", pass: peakMB <= 200 });

  // ---- Stop (the CPU profile is written when the service exits) and report ------------------
  log("stopping the service");
  const code = await service.stop();
  if (code !== 0) log(`the service exited with ${code}:\n${service.tail()}`);

  // ---- The data plane (after the service stopped, so it has the machine) ---------------------
  const edgeModes = ([["e1", "throughput"], ["e2", "connect"], ["e3", "idle"]] as const).filter(([id]) => wanted(id) || wanted("edge"));
  let edgeFigures: Record<string, number> | undefined;
  if (edgeModes.length > 0) {
    ensurePgbench(log);
    const edgeDir = path.join(tmp, "edge");
    mkdirSync(edgeDir, { mode: 0o711 });
    try {
      const edge = await edgeBench({
        dir: edgeDir,
        durationS: opts.durationS,
        rounds: opts.edgeRounds,
        clients: 8,
        scale: 10,
        idleClients: opts.idleClients,
        only: new Set(edgeModes.map(([, mode]) => mode)),
        pgbouncer: ensurePgbouncer(log),
        edgeNodeArgs: [],
        log,
      });
      rows.push(...edge.rows);
      checks.push(...edge.checks);
      edgeFigures = edge.figures;
    } catch (err) {
      rows.push(errorRow("E", "the data plane's rows", "pgbench", err));
    }
  }

  machine.loadAvgEnd = loadavg().map((v) => Math.round(v * 100) / 100);
  const table = renderTable(rows, checks);
  process.stdout.write(`\n${table}\n\n`);
  process.stdout.write(
    `machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Linux ${machine.kernel}, Node ${machine.node}; ` +
      `load average ${machine.loadAvgStart.join("/")} → ${machine.loadAvgEnd.join("/")}; commit ${machine.gitCommit}${machine.gitDirty ? " (dirty)" : ""}\n`,
  );
  const failed = checks.filter((c) => c.pass === false).length;
  const na = checks.filter((c) => c.pass === undefined).length;
  process.stdout.write(`targets: ${checks.length - failed - na} pass, ${failed} fail, ${na} n/a\n`);

  mkdirSync(path.dirname(opts.out), { recursive: true });
  const json = {
    machine,
    options: { ...opts, out: undefined, inFlight, servicePoolSize: poolSize, serviceLogLevel: opts.logLevel, serviceCommand },
    rows,
    checks,
    serviceMemoryMiB: memory,
    edgeFigures,
    durationS: (Date.now() - started) / 1000,
    table,
  };
  writeFileSync(opts.out, `${JSON.stringify(json, null, 2)}\n`);
  log(`wrote ${path.relative(process.cwd(), opts.out)}`);

  if (opts.profile) {
    const profiles = readdirSync(profileDir).filter((f) => f.endsWith(".cpuprofile"));
    for (const file of profiles) {
      const summary = summarizeProfile(path.join(profileDir, file));
      writeFileSync(path.join(profileDir, file.replace(/\.cpuprofile$/, ".txt")), summary);
      process.stdout.write(`\nCPU profile ${path.relative(process.cwd(), path.join(profileDir, file))}\n${summary}\n`);
    }
  }
  return rows.some((r) => r.state === "error") ? 1 : 0;
}

function ratioCheck(row: string, value: number | undefined, base: number | undefined, measure: string, limit: number, op: ">=" | "<="): Check {
  const ratio = value !== undefined && base !== undefined && base > 0 ? value / base : undefined;
  const pass = ratio === undefined ? undefined : op === ">=" ? ratio >= limit : ratio <= limit;
  return { row, measure, ratio, target: `${op === ">=" ? "≥" : "≤"} ${limit.toFixed(2)}`, pass };
}

// ---------------------------------------------------------------------------------------------

installExitHandlers();
let options: Options;
try {
  options = parseOptions(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(2);
}
main(options).then(
  async (code) => {
    await cleanup();
    process.exit(code);
  },
  async (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    await cleanup();
    process.exit(1);
  },
);
