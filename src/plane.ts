// The data plane of this replica: the edge (src/edge/) kept in step with the state. It loads every
// tenant's routes at start, then reloads a tenant when a notification says it changed (any
// replica's change, or SQL written by hand: migrations 0004 and 0009's triggers), everything when
// the notification connection comes back (notices may have been lost) and every 30 s whatever
// happens. Reloads run one at a time and coalesce: a burst of changes is one apply.
import { execFile } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Logger } from "pino";
import type { PoolStats } from "../gen/qod/v1/pool";
import type { Config } from "./config";
import type { NotificationFeed } from "./db/listen";
import type { Metrics } from "./metrics";
import { findPgbouncer } from "./edge/engines";
import { Edge, type EdgeHealth } from "./edge/server";
import { generateSelfSignedCertificate, type CertificatePair } from "./edge/tls";
import { loadRoutes, type PoolStatsSource, type RouteDeps, type TenantRoutes } from "./pools";
import { ALL_TENANTS } from "./tenants";

const COALESCE_MS = 20;
const FULL_RELOAD_MS = 30_000;
const RETRY_MS = 1_000;

export interface DataPlaneOptions {
  host: string;
  transactionPort: number;
  sessionPort: number;
  pgbouncerBinary: string;
  /** Where the engines' private directories go. */
  runDir: string;
  maxConnections: number | undefined;
  tls: CertificatePair | undefined;
  routes: RouteDeps;
  feed: NotificationFeed;
  logger: Logger;
}

export interface DataPlane {
  /** Loads the routes, starts listening; returns the bound ports. */
  start(): Promise<{ transactionPort: number; sessionPort: number }>;
  /** Ends every session (57P01), stops the engines. */
  stop(): Promise<void>;
  stats: PoolStatsSource;
  health(): EdgeHealth;
  /** Registers the data plane's metrics, read from the edge and its engines at each scrape. */
  observe(metrics: Metrics): void;
}

export function createDataPlane(options: DataPlaneOptions): DataPlane {
  const log = options.logger.child({ component: "data-plane" });
  let edge: Edge | undefined;
  let tenants = new Map<string, TenantRoutes>();
  let pending = new Set<string>();
  let everything = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let stopped = false;
  let unsubscribe: (() => void) | undefined;
  let periodic: NodeJS.Timeout | undefined;

  /** Reloads what is pending, applies it, and ends the sessions of tenants that asked since. */
  async function reload(): Promise<void> {
    const names = pending;
    const all = everything;
    pending = new Set();
    everything = false;
    const next = all ? new Map<string, TenantRoutes>() : new Map(tenants);
    try {
      if (all) for (const [name, entry] of await loadRoutes(options.routes)) next.set(name, entry);
      else {
        for (const name of names) {
          const entry = (await loadRoutes(options.routes, name)).get(name);
          if (entry) next.set(name, entry);
          else next.delete(name);
        }
      }
    } catch (err) {
      // The state database is out of reach: keep serving what we know, and try again.
      log.warn({ err: { message: (err as Error).message } }, "could not reload the routes; retrying");
      for (const name of names) pending.add(name);
      everything ||= all;
      schedule(RETRY_MS);
      return;
    }
    // A terminate request newer than the last one seen (of a tenant already known) ends its sessions.
    const terminate = [...next].filter(([name, entry]) => {
      const before = tenants.get(name);
      return before !== undefined && entry.terminatedAt !== undefined && entry.terminatedAt !== before.terminatedAt;
    });
    tenants = next;
    await edge?.apply([...tenants.values()].map((entry) => entry.tenant));
    for (const [name] of terminate) {
      log.info({ tenant: name }, "ending a tenant's sessions (terminate)");
      await edge?.terminate(name);
    }
    if (names.size > 0 || all) log.debug({ tenants: all ? "all" : [...names] }, "routes reloaded");
  }

  function schedule(delayMs = COALESCE_MS): void {
    if (stopped || timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      running = running.then(reload).catch((err: unknown) => log.error({ err }, "could not apply the routes"));
    }, delayMs);
    timer.unref();
  }

  const reloadAll = () => {
    everything = true;
    schedule();
  };

  return {
    async start() {
      // As root the engines run as `nobody`, which must pass through (not list) the data directory.
      mkdirSync(options.runDir, { recursive: true, mode: 0o711 });
      if (process.getuid?.() === 0) for (const dir of [path.dirname(options.runDir), options.runDir]) chmodSync(dir, statSync(dir).mode | 0o011);
      edge = new Edge({
        host: options.host,
        transactionPort: options.transactionPort,
        sessionPort: options.sessionPort,
        pgbouncerBinary: options.pgbouncerBinary,
        runDir: options.runDir,
        maxConnections: options.maxConnections,
        tls: options.tls,
        logger: options.logger,
      });
      everything = true;
      await reload();
      const ports = await edge.listen();
      unsubscribe = options.feed.subscribe({
        notify: (name) => {
          if (name === ALL_TENANTS) everything = true;
          else pending.add(name);
          schedule();
        },
        listening: reloadAll,
        lost: () => {},
      });
      periodic = setInterval(reloadAll, FULL_RELOAD_MS);
      periodic.unref();
      return ports;
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      clearInterval(periodic);
      unsubscribe?.();
      await running;
      await edge?.close();
    },
    async stats(poolIds) {
      if (!edge) return new Map();
      const all = await edge.stats();
      const wanted = new Map<string, PoolStats>();
      for (const id of poolIds) {
        const figures = all.get(id);
        if (!figures) continue;
        const { transactions, queries, waitTimeUs, ...counts } = figures;
        wanted.set(id, { ...counts, transactions: String(transactions), queries: String(queries), waitTimeUs: String(waitTimeUs) });
      }
      return wanted;
    },
    health,
    observe(metrics) {
      observeDataPlane(metrics, async () => (edge ? edge.namedStats() : []), health, log);
    },
  };

  function health(): EdgeHealth {
    return edge?.health() ?? { ok: false, listening: false, restarts: 0, connections: 0, engines: [] };
  }
}

type NamedStats = Awaited<ReturnType<Edge["namedStats"]>>;

/** A scrape never waits longer than this for an engine's console (one that hangs would stall every scrape). */
const FIGURES_TIMEOUT_MS = 3_000;

function withTimeout<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)));
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/**
 * The per-pool metrics (labelled by tenant and pool name) and the edge's. One scrape reads
 * every metric at once: they share one read of the engines' SHOW POOLS and SHOW STATS.
 */
function observeDataPlane(metrics: Metrics, read: () => Promise<NamedStats>, health: () => EdgeHealth, log: Logger): void {
  let reading: Promise<NamedStats> | undefined;
  const figures = () =>
    (reading ??= withTimeout(read(), FIGURES_TIMEOUT_MS, "the engines' figures did not come in time")
      .catch((err: unknown) => {
        log.warn({ message: (err as Error).message }, "could not read the engines' figures for the metrics");
        return [];
      })
      .finally(() => (reading = undefined)));
  const labels = ["tenant", "pool"] as const;
  const perPool = (name: string, help: string, value: (s: NamedStats[number]["stats"]) => number) =>
    metrics.gauge(name, help, labels, async (g) => {
      g.reset();
      for (const { tenant, pool, stats } of await figures()) g.set({ tenant, pool }, value(stats));
    });
  const totalPerPool = (name: string, help: string, value: (s: NamedStats[number]["stats"]) => number) =>
    metrics.counterOf(name, help, labels, async (c) => {
      c.reset();
      for (const { tenant, pool, stats } of await figures()) c.inc({ tenant, pool }, value(stats));
    });
  perPool("qod_pool_clients", "Client sessions open through the edge, both ports.", (s) => s.clients);
  perPool("qod_pool_clients_active", "Client sessions paired with a server connection (PgBouncer cl_active).", (s) => s.clientsActive);
  perPool("qod_pool_clients_waiting", "Client sessions waiting for a server connection (PgBouncer cl_waiting).", (s) => s.clientsWaiting);
  metrics.gauge("qod_pool_servers", "Server connections to the upstream, active (serving a client) or idle.", [...labels, "state"], async (g) => {
    g.reset();
    for (const { tenant, pool, stats } of await figures()) {
      g.set({ tenant, pool, state: "active" }, stats.serversActive);
      g.set({ tenant, pool, state: "idle" }, stats.serversIdle);
    }
  });
  totalPerPool("qod_pool_transactions_total", "Transactions pooled (PgBouncer total_xact_count; restarts from 0 with its engine).", (s) => s.transactions);
  totalPerPool("qod_pool_queries_total", "Queries pooled (PgBouncer total_query_count; restarts from 0 with its engine).", (s) => s.queries);
  totalPerPool("qod_pool_wait_seconds_total", "Time clients waited for a server connection, in seconds (PgBouncer total_wait_time).", (s) => s.waitTimeUs / 1e6);
  metrics.gauge("qod_edge_connections", "Connections the edge holds: sessions and handshakes in progress.", [], (g) => g.set(health().connections));
  metrics.gauge("qod_edge_engines", "PgBouncer engines, running or down (starting, or waiting to restart).", ["state"], (g) => {
    const { engines } = health();
    const running = engines.filter((e) => e.running).length;
    g.set({ state: "running" }, running);
    g.set({ state: "down" }, engines.length - running);
  });
  metrics.counterOf("qod_edge_engine_restarts_total", "Times a PgBouncer engine died and was restarted.", [], (c) => {
    c.reset();
    c.inc(health().restarts);
  });
}

/**
 * What the data plane needs from this machine: the PgBouncer binary (QOD_PGBOUNCER_BIN or PATH;
 * when missing, the Debian package is installed if this process can: root with apt-get) and the
 * certificate clients' TLS is served with (QOD_EDGE_TLS_CERT/KEY, or in embedded mode a self-signed
 * pair kept under QOD_DATA_DIR). Undefined, with a warning saying what to do, when the data plane
 * cannot run here.
 */
export async function prepareDataPlane(config: Readonly<Config>, logger: Logger): Promise<{ pgbouncerBinary: string; tls: CertificatePair | undefined } | undefined> {
  let binary = findPgbouncer(config.edge.pgbouncerBin, config.searchPath);
  if (!binary && process.getuid?.() === 0 && findOnPath("apt-get", config.searchPath)) {
    logger.info("PgBouncer is not installed: installing the Debian package (apt-get install -y pgbouncer)");
    try {
      await run("apt-get", ["update", "-qq"]);
      await run("apt-get", ["install", "-y", "-qq", "pgbouncer"]);
    } catch (err) {
      logger.warn({ err: { message: (err as Error).message } }, "could not install PgBouncer");
    }
    binary = findPgbouncer(config.edge.pgbouncerBin, config.searchPath);
  }
  if (!binary) {
    logger.warn("PgBouncer is not installed, so the data plane is off; install it with `apt-get install pgbouncer` (or set QOD_PGBOUNCER_BIN) and start again");
    return undefined;
  }
  return { pgbouncerBinary: binary, tls: await edgeCertificate(config, logger) };
}

async function edgeCertificate(config: Readonly<Config>, logger: Logger): Promise<CertificatePair | undefined> {
  if (config.edge.tls) return { cert: readFileSync(config.edge.tls.certFile, "utf8"), key: readFileSync(config.edge.tls.keyFile, "utf8") };
  if (config.pg) return undefined; // not embedded: TLS is the operator's to configure
  const dir = path.join(config.dataDir, "edge-tls");
  const certFile = path.join(dir, "cert.pem");
  const keyFile = path.join(dir, "key.pem");
  if (existsSync(certFile) && existsSync(keyFile)) return { cert: readFileSync(certFile, "utf8"), key: readFileSync(keyFile, "utf8") };
  try {
    const pair = await generateSelfSignedCertificate({ hosts: ["localhost", "127.0.0.1", "::1"] });
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(keyFile, pair.key, { mode: 0o600 });
    writeFileSync(certFile, pair.cert, { mode: 0o644 });
    logger.info({ certFile }, "made a self-signed certificate for the data plane's TLS");
    return pair;
  } catch (err) {
    logger.warn({ err: { message: (err as Error).message } }, "could not make a certificate: the data plane serves no TLS (set QOD_EDGE_TLS_CERT and QOD_EDGE_TLS_KEY)");
    return undefined;
  }
}

const findOnPath = (command: string, searchPath: string) => searchPath.split(":").some((dir) => dir !== "" && existsSync(path.join(dir, command)));

function run(command: string, args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(command, [...args], { timeout: 300_000 }, (err) => (err ? reject(err) : resolve()));
  });
}
