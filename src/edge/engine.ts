// One PgBouncer process (an "engine"): run in a private directory it owns, listening only on a unix
// socket there, configured from the routes it is given, watched and restarted when it dies.
//
// Run-time changes go through its admin console (node-postgres speaks the simple protocol to it):
// RELOAD after the ini is rewritten, RECONNECT for a route whose upstream changed (its server
// connections are replaced as they are released; its clients stay), KILL + RESUME to drop a
// route's clients and servers at once. Nothing set over the console has to survive a restart:
// routes live in the ini, and the states that refuse clients (disabled, banned) live in the edge.
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Client } from "pg";
import type { Logger } from "pino";
import { renderAuthFile, renderIni } from "./pgbouncer-config";
import { ROUTE_NAME, type UpstreamTlsMode } from "./snapshot";

/** The user the edge logs in as, and the admin console's user; both exist only in this engine's auth_file. */
export const ENGINE_LOGIN_USER = "qod_edge";
const ADMIN_USER = "qod_admin";
/** Names the socket file (.s.PGSQL.<port>); nothing listens on TCP. */
const SOCKET_PORT = 6432;

export interface EngineOptions {
  /** The profile this engine serves; names its directory and its log lines. */
  name: string;
  binary: string;
  /** Its private directory; created 0700 (owned by `runAs` when given), removed on stop. */
  dir: string;
  tls: { mode: UpstreamTlsMode; ca?: string };
  /** CA bundle for a verify-full engine whose routes name no CA. */
  systemCaFile?: string;
  maxClientConn: number;
  clientLoginTimeoutSec: number;
  /** Uid/gid to run as (PgBouncer refuses root). */
  runAs?: { uid: number; gid: number };
  logger: Logger;
  startTimeoutMs?: number;
}

/** One route's figures from SHOW POOLS and SHOW STATS. */
export interface RouteFigures {
  clientsActive: number;
  clientsWaiting: number;
  serversActive: number;
  serversIdle: number;
  transactions: number;
  queries: number;
  waitTimeUs: number;
}

type State = "stopped" | "starting" | "running" | "waiting-to-restart" | "closed";

const MIN_RESTART_DELAY_MS = 200;
const MAX_RESTART_DELAY_MS = 10_000;
/** A process that ran this long before dying restarts without delay growth. */
const STABLE_AFTER_MS = 30_000;

export class Engine {
  readonly socketPath: string;
  readonly #options: EngineOptions;
  readonly #iniPath: string;
  readonly #log: Logger;
  #state: State = "stopped";
  #child: ChildProcess | undefined;
  #startedAt = 0;
  #restartDelay = MIN_RESTART_DELAY_MS;
  #restartTimer: NodeJS.Timeout | undefined;
  #deaths = 0;
  /** Route name → its ini line: what the engine should serve. */
  #routes = new Map<string, string>();
  /** What the running process has loaded. */
  #loaded = new Map<string, string>();
  #listeners = new Set<() => void>();
  /** Admin operations and config writes, one at a time. */
  #queue: Promise<unknown> = Promise.resolve();
  #recentOutput: string[] = [];

  constructor(options: EngineOptions) {
    this.#options = options;
    this.#iniPath = path.join(options.dir, "pgbouncer.ini");
    this.socketPath = path.join(options.dir, `.s.PGSQL.${SOCKET_PORT}`);
    this.#log = options.logger.child({ engine: options.name });
  }

  get pid(): number | undefined {
    return this.#state === "running" ? this.#child?.pid : undefined;
  }

  get running(): boolean {
    return this.#state === "running";
  }

  /** How many times the process died and was (or is being) restarted. */
  get restarts(): number {
    return this.#deaths;
  }

  get routeCount(): number {
    return this.#routes.size;
  }

  /** Prepares the directory and starts the process; resolves once its console answers. */
  async start(): Promise<void> {
    if (this.#state !== "stopped") throw new Error(`engine ${this.#options.name} was already started`);
    this.#prepareDirectory();
    await this.#launch();
  }

  /**
   * Makes the engine serve exactly `routes` (route name → ini line): rewrites the ini atomically
   * and RELOADs; a route whose line changed gets RECONNECT (only its server connections are
   * replaced). A removed route's clients are dropped by PgBouncer at once.
   */
  setRoutes(routes: ReadonlyMap<string, string>): Promise<void> {
    if (this.#state === "running" && sameRoutes(routes, this.#routes) && sameRoutes(routes, this.#loaded)) return Promise.resolve(); // nothing to reload
    this.#routes = new Map(routes);
    return this.#enqueue(async () => {
      if (this.#state !== "running") return; // written at the next (re)start
      const written = new Map(this.#routes);
      this.#writeIni(written);
      await this.#admin((c) => c.query("RELOAD"));
      const changed = [...written].filter(([name, line]) => this.#loaded.has(name) && this.#loaded.get(name) !== line).map(([name]) => name);
      const added = [...written.keys()].filter((name) => !this.#loaded.has(name));
      const removed = [...this.#loaded.keys()].filter((name) => !written.has(name));
      this.#log.info({ added, removed, changed, routes: written.size }, "routes applied");
      this.#markLoaded(written);
      if (changed.length === 0) return;
      await this.#admin(async (c) => {
        for (const name of changed) await c.query(`RECONNECT ${checkedRoute(name)}`);
      });
    });
  }

  /** True once the running process serves `route` with exactly this line. */
  serves(route: string, line: string): boolean {
    return this.#state === "running" && this.#loaded.get(route) === line;
  }

  /** Resolves true when the engine serves `route` with `line`, false after `timeoutMs` or on close. */
  whenServing(route: string, line: string, timeoutMs: number): Promise<boolean> {
    if (this.serves(route, line)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = () => {
        if (this.serves(route, line)) finish(true);
        else if (this.#state === "closed") finish(false);
      };
      const finish = (result: boolean) => {
        clearTimeout(timer);
        this.#listeners.delete(check);
        resolve(result);
      };
      const timer = setTimeout(() => finish(false), timeoutMs);
      this.#listeners.add(check);
    });
  }

  /** Drops the routes' clients and server connections now (KILL), then lets new clients in (RESUME). */
  killAndResume(routes: readonly string[]): Promise<void> {
    return this.#enqueue(async () => {
      if (this.#state !== "running") return;
      await this.#admin(async (c) => {
        for (const name of routes) {
          if (!this.#loaded.has(name)) continue;
          await c.query(`KILL ${checkedRoute(name)}`);
          await c.query(`RESUME ${checkedRoute(name)}`);
        }
      });
    });
  }

  /** SHOW POOLS and SHOW STATS by route (routes not loaded yet are absent). */
  figures(): Promise<Map<string, RouteFigures>> {
    return this.#enqueue(async () => {
      const figures = new Map<string, RouteFigures>();
      if (this.#state !== "running") return figures;
      await this.#admin(async (c) => {
        const pools = await c.query<Record<string, string | null>>("SHOW POOLS");
        const stats = await c.query<Record<string, string | null>>("SHOW STATS");
        for (const row of pools.rows) {
          if (!row.database || !ROUTE_NAME.test(row.database)) continue;
          const f = figures.get(row.database) ?? emptyFigures();
          f.clientsActive += num(row.cl_active);
          f.clientsWaiting += num(row.cl_waiting);
          f.serversActive += num(row.sv_active);
          f.serversIdle += num(row.sv_idle) + num(row.sv_used) + num(row.sv_tested);
          figures.set(row.database, f);
        }
        for (const row of stats.rows) {
          if (!row.database || !ROUTE_NAME.test(row.database)) continue;
          const f = figures.get(row.database) ?? emptyFigures();
          f.transactions += num(row.total_xact_count);
          f.queries += num(row.total_query_count);
          f.waitTimeUs += num(row.total_wait_time);
          figures.set(row.database, f);
        }
      });
      return figures;
    });
  }

  /** Stops the process (SIGTERM: immediate shutdown; SIGKILL after `graceMs`) and removes its directory. */
  async stop(graceMs = 5_000): Promise<void> {
    if (this.#state === "closed") return;
    this.#state = "closed";
    clearTimeout(this.#restartTimer);
    this.#notify();
    const child = this.#child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    }
    await this.#queue.catch(() => undefined);
    rmSync(this.#options.dir, { recursive: true, force: true });
  }

  // ---- process ---------------------------------------------------------------------------------

  #prepareDirectory(): void {
    const { dir, runAs, tls } = this.#options;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    if (runAs) chownSync(dir, runAs.uid, runAs.gid);
    this.#writePrivate("auth.txt", renderAuthFile([ENGINE_LOGIN_USER, ADMIN_USER]));
    if (tls.mode === "verify-full" && tls.ca) this.#writePrivate("ca.pem", tls.ca);
  }

  /** Writes a 0600 file readable by the engine's user, atomically (a reload never sees half a file). */
  #writePrivate(name: string, text: string): void {
    const { dir, runAs } = this.#options;
    const target = path.join(dir, name);
    const temporary = `${target}.tmp`;
    writeFileSync(temporary, text, { mode: 0o600 });
    if (runAs) chownSync(temporary, runAs.uid, runAs.gid);
    renameSync(temporary, target);
  }

  #writeIni(routes: ReadonlyMap<string, string>): void {
    const { dir, tls, systemCaFile, maxClientConn, clientLoginTimeoutSec } = this.#options;
    // verify-full never falls back to less: without a CA of its own it uses the system's bundle.
    const caFile = tls.mode === "verify-full" ? (tls.ca ? path.join(dir, "ca.pem") : systemCaFile) : undefined;
    if (tls.mode === "verify-full" && !caFile) throw new Error("a verify-full engine needs a CA file");
    this.#writePrivate(
      "pgbouncer.ini",
      renderIni(
        {
          socketDir: dir,
          port: SOCKET_PORT,
          authFile: path.join(dir, "auth.txt"),
          adminUser: ADMIN_USER,
          maxClientConn,
          clientLoginTimeoutSec,
          tls: { mode: tls.mode, caFile },
        },
        [...routes.values()],
      ),
    );
  }

  async #launch(): Promise<void> {
    this.#state = "starting";
    const written = new Map(this.#routes);
    try {
      this.#writeIni(written);
    } catch (err) {
      this.#log.error({ err }, "could not write the pgbouncer config");
      this.#scheduleRestart();
      throw err;
    }
    const child = spawn(this.#options.binary, [this.#iniPath], {
      stdio: ["ignore", "pipe", "pipe"],
      env: {}, // it needs nothing from ours
      ...(this.#options.runAs ? { uid: this.#options.runAs.uid, gid: this.#options.runAs.gid } : {}),
    });
    this.#child = child;
    this.#startedAt = Date.now();
    this.#recentOutput = [];
    child.stdout?.on("data", (chunk: Buffer) => this.#onOutput(chunk));
    child.stderr?.on("data", (chunk: Buffer) => this.#onOutput(chunk));
    let spawnError: Error | undefined;
    child.once("error", (err) => (spawnError = err)); // e.g. no such binary: no "exit" follows
    child.once("exit", (code, signal) => this.#onExit(child, code, signal));
    const ready = await this.#waitForConsole(child, () => spawnError);
    if (ready instanceof Error) {
      this.#log.error({ err: ready }, "could not start pgbouncer");
      this.#scheduleRestart();
      throw ready;
    }
    if (this.#state !== "starting" || this.#child !== child) throw new Error(`engine ${this.#options.name} stopped while starting`);
    this.#state = "running";
    this.#markLoaded(written);
    this.#log.info({ pid: child.pid, routes: written.size }, "pgbouncer running");
    // Routes that changed while it started are written now.
    if (!sameRoutes(written, this.#routes)) void this.setRoutes(this.#routes).catch((err) => this.#log.error({ err }, "route update failed"));
  }

  async #waitForConsole(child: ChildProcess, spawnError: () => Error | undefined): Promise<true | Error> {
    const deadline = Date.now() + (this.#options.startTimeoutMs ?? 10_000);
    let delay = 20;
    for (;;) {
      const failed = spawnError();
      if (failed) return failed;
      if (child.exitCode !== null || child.signalCode !== null) {
        return new Error(`pgbouncer exited while starting: ${this.#recentOutput.slice(-3).join(" | ")}`);
      }
      try {
        await this.#admin((c) => c.query("SHOW VERSION"));
        return true;
      } catch {
        if (Date.now() > deadline) {
          child.kill("SIGKILL");
          return new Error("pgbouncer did not answer on its socket in time");
        }
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 200);
      }
    }
  }

  #onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (child !== this.#child) return;
    this.#loaded.clear();
    if (this.#state === "closed") return;
    this.#deaths++;
    this.#log.error({ code, signal, output: this.#recentOutput.slice(-5) }, "pgbouncer exited; restarting it");
    this.#scheduleRestart();
  }

  #scheduleRestart(): void {
    if (this.#state === "closed" || this.#state === "waiting-to-restart") return;
    this.#state = "waiting-to-restart";
    this.#notify();
    if (Date.now() - this.#startedAt > STABLE_AFTER_MS) this.#restartDelay = MIN_RESTART_DELAY_MS;
    const delay = this.#restartDelay;
    this.#restartDelay = Math.min(this.#restartDelay * 2, MAX_RESTART_DELAY_MS);
    this.#restartTimer = setTimeout(() => {
      if (this.#state !== "waiting-to-restart") return;
      this.#launch().catch(() => undefined); // logged, and rescheduled, by #launch
    }, delay);
  }

  #onOutput(chunk: Buffer): void {
    for (const raw of chunk.toString("utf8").split("\n")) {
      const line = raw.trim().replace(/password=('(?:[^']|'')*'|\S+)/g, "password=***");
      if (!line) continue;
      this.#recentOutput.push(line);
      if (this.#recentOutput.length > 20) this.#recentOutput.shift();
      if (/ (WARNING|ERROR|FATAL) /.test(line)) this.#log.warn({ pgbouncer: line }, "pgbouncer");
      else this.#log.debug({ pgbouncer: line }, "pgbouncer");
    }
  }

  // ---- helpers ---------------------------------------------------------------------------------

  #markLoaded(routes: ReadonlyMap<string, string>): void {
    this.#loaded = new Map(routes);
    this.#notify();
  }

  #notify(): void {
    for (const listener of [...this.#listeners]) listener();
  }

  #enqueue<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.#queue.then(operation, operation);
    this.#queue = result.catch(() => undefined);
    return result;
  }

  async #admin<T>(operation: (client: Client) => Promise<T>): Promise<T> {
    const client = new Client({
      host: this.#options.dir,
      port: SOCKET_PORT,
      user: ADMIN_USER,
      database: "pgbouncer",
      connectionTimeoutMillis: 5_000,
    });
    client.on("error", () => undefined); // a dying engine; the operation's own promise reports it
    await client.connect();
    try {
      return await operation(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}

/** Route names are spliced into console commands, so only our own fixed form is accepted. */
function checkedRoute(name: string): string {
  if (!ROUTE_NAME.test(name)) throw new Error(`not a route name: ${name}`);
  return name;
}

const num = (value: string | null | undefined): number => (value ? Number(value) : 0);

export const emptyFigures = (): RouteFigures => ({
  clientsActive: 0,
  clientsWaiting: 0,
  serversActive: 0,
  serversIdle: 0,
  transactions: 0,
  queries: 0,
  waitTimeUs: 0,
});

/** Adds `more` to `sum`, figure by figure (all are counts or totals). */
export function addFigures(sum: RouteFigures, more: RouteFigures): void {
  for (const key of Object.keys(more) as (keyof RouteFigures)[]) sum[key] += more[key];
}

function sameRoutes(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [name, line] of a) if (b.get(name) !== line) return false;
  return true;
}
