// The engines behind the edge, one per upstream TLS profile. PgBouncer 1.18's server TLS settings
// are global (server_tls_sslmode, server_tls_ca_file), so routes are grouped by profile: `disable`,
// `require`, and one `verify-full` engine per CA. An engine starts when a route first needs its
// profile and stops when none does. A verify-full route only ever lands on a verify-full engine.
import { execFileSync } from "node:child_process";
import { accessSync, chmodSync, constants, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Logger } from "pino";
import { Engine, type RouteFigures } from "./engine";
import type { EdgeUpstream } from "./snapshot";

export interface EngineSetOptions {
  binary: string;
  /** Where the engines' private directories go (a fresh directory is made inside). */
  runDir?: string;
  /** When the edge runs as root: the user the engines run as. */
  runAsUser: string;
  systemCaFile?: string;
  maxClientConn: number;
  clientLoginTimeoutSec: number;
  logger: Logger;
}

/** The routes one profile's engine must serve: route name → ini line. */
export interface ProfileRoutes {
  tls: EdgeUpstream["tls"];
  routes: ReadonlyMap<string, string>;
}

/** Unix socket paths are limited to 107 bytes; leave room for `/<profile>/.s.PGSQL.6432`. */
const MAX_BASE_DIR_LENGTH = 60;
const BASE_DIR_PREFIX = "qod-edge-";
/** In each base directory: the pid of the process whose engines live there. */
const OWNER_FILE = "owner.pid";

export class EngineSet {
  readonly #options: EngineSetOptions;
  readonly #baseDir: string;
  readonly #runAs: { uid: number; gid: number } | undefined;
  readonly #engines = new Map<string, Engine>();
  /** Restarts of the engines stopped since (their profile lost its last pool). */
  #retiredRestarts = 0;
  #closed = false;

  constructor(options: EngineSetOptions) {
    this.#options = options;
    this.#runAs = process.getuid?.() === 0 ? lookupUser(options.runAsUser) : undefined;
    let runDir = path.resolve(options.runDir ?? tmpdir());
    if (runDir.length + 1 + BASE_DIR_PREFIX.length + 6 > MAX_BASE_DIR_LENGTH) {
      options.logger.warn({ runDir, instead: tmpdir() }, "the edge's run directory is too deep for unix socket paths; using the system's temporary directory");
      runDir = tmpdir();
    }
    if (this.#runAs) checkTraversable(runDir, this.#runAs.uid, options.runAsUser);
    sweepOrphanEngines(runDir, options.logger);
    this.#baseDir = mkdtempSync(path.join(runDir, BASE_DIR_PREFIX));
    if (this.#baseDir.length > MAX_BASE_DIR_LENGTH) {
      rmSync(this.#baseDir, { recursive: true, force: true });
      throw new Error(`the edge's run directory path is too long for unix sockets: ${this.#baseDir}`);
    }
    // The engines' user must pass through to its own 0700 directory inside, and nothing more.
    chmodSync(this.#baseDir, this.#runAs ? 0o711 : 0o700);
    writeFileSync(path.join(this.#baseDir, OWNER_FILE), String(process.pid), { mode: 0o600 });
  }

  engine(profile: string): Engine | undefined {
    return this.#engines.get(profile);
  }

  get engines(): ReadonlyMap<string, Engine> {
    return this.#engines;
  }

  /**
   * Gives every profile's engine its routes: starts the engines a profile newly needs, updates the
   * others, and stops those left without routes. Resolves when every engine has its routes (an
   * engine that cannot start is logged and keeps retrying on its own).
   */
  async sync(profiles: ReadonlyMap<string, ProfileRoutes>): Promise<void> {
    if (this.#closed) return;
    const work: Promise<void>[] = [];
    for (const [profile, { tls, routes }] of profiles) {
      let engine = this.#engines.get(profile);
      if (!engine) {
        engine = new Engine({
          name: profile,
          binary: this.#options.binary,
          dir: path.join(this.#baseDir, profile),
          tls,
          systemCaFile: this.#options.systemCaFile,
          maxClientConn: this.#options.maxClientConn,
          clientLoginTimeoutSec: this.#options.clientLoginTimeoutSec,
          runAs: this.#runAs,
          logger: this.#options.logger,
        });
        this.#engines.set(profile, engine);
        void engine.setRoutes(routes); // not running yet: recorded, written by start()
        const started = engine;
        work.push(started.start().catch((err) => this.#options.logger.error({ err, engine: profile }, "engine did not start; retrying")));
      } else {
        work.push(engine.setRoutes(routes).catch((err) => this.#options.logger.error({ err, engine: profile }, "engine route update failed")));
      }
    }
    for (const [profile, engine] of this.#engines) {
      if (profiles.has(profile)) continue;
      this.#engines.delete(profile);
      this.#retiredRestarts += engine.restarts;
      work.push(engine.stop());
    }
    await Promise.all(work);
  }

  /** Restarts of every engine this edge has run, those stopped since included: it only grows. */
  get restarts(): number {
    let total = this.#retiredRestarts;
    for (const engine of this.#engines.values()) total += engine.restarts;
    return total;
  }

  /** Figures by route, over all engines. */
  async figures(): Promise<Map<string, RouteFigures>> {
    const all = new Map<string, RouteFigures>();
    const results = await Promise.allSettled([...this.#engines.values()].map((engine) => engine.figures()));
    for (const result of results) {
      if (result.status === "fulfilled") for (const [route, figures] of result.value) all.set(route, figures);
    }
    return all;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#engines.values()].map((engine) => engine.stop()));
    this.#engines.clear();
    rmSync(this.#baseDir, { recursive: true, force: true });
  }
}

/**
 * Engines of an edge process that was killed (SIGKILL leaves its children running, each holding a
 * socket nobody reaches): stops the PgBouncers whose ini lies in a base directory whose owner is
 * gone, and removes those directories. Directories of live edges are left alone.
 */
function sweepOrphanEngines(runDir: string, log: Logger): void {
  let entries: string[];
  try {
    entries = readdirSync(runDir).filter((name) => name.startsWith(BASE_DIR_PREFIX));
  } catch {
    return;
  }
  for (const name of entries) {
    const dir = path.join(runDir, name);
    const ownerFile = path.join(dir, OWNER_FILE);
    if (!existsSync(ownerFile)) continue; // being set up, or not ours
    const owner = Number(readFileSync(ownerFile, "utf8"));
    if (owner > 0 && isAlive(owner)) continue;
    for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
      try {
        const [binary, ini] = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
        if (binary?.endsWith("pgbouncer") && ini?.startsWith(`${dir}/`)) {
          log.warn({ pid: Number(pid), dir }, "stopping an engine left behind by an edge that is gone");
          process.kill(Number(pid), "SIGTERM");
        }
      } catch {
        // exited meanwhile, or not ours to read
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The engines run as another user, who must be able to pass through every directory above theirs. */
function checkTraversable(dir: string, uid: number, user: string): void {
  for (let at = dir; ; at = path.dirname(at)) {
    const stat = statSync(at);
    if (stat.uid !== uid && (stat.mode & 0o001) === 0) {
      throw new Error(`the engines' user "${user}" cannot pass through ${at}: give others execute permission (chmod o+x) or choose another run directory`);
    }
    if (at === path.dirname(at)) return;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * The pgbouncer binary to run: `explicit` (QOD_PGBOUNCER_BIN) when given, else the first executable
 * `pgbouncer` on `searchPath` (a PATH value), else Debian's /usr/sbin/pgbouncer (sbin is often not
 * on a service's PATH). Engines are spawned with an empty environment, so the path is resolved here.
 */
export function findPgbouncer(explicit: string | undefined, searchPath: string): string | undefined {
  if (explicit) return explicit;
  const candidates = [...searchPath.split(":").filter(Boolean).map((dir) => path.join(dir, "pgbouncer")), "/usr/sbin/pgbouncer"];
  return candidates.find((file) => {
    try {
      accessSync(file, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** uid and gid of a local user (NSS through getent, so it works beyond /etc/passwd). */
function lookupUser(name: string): { uid: number; gid: number } {
  let entry: string;
  try {
    entry = execFileSync("getent", ["passwd", name], { encoding: "utf8" });
  } catch {
    throw new Error(`the engines' user "${name}" does not exist (PgBouncer refuses to run as root)`);
  }
  const [, , uid, gid] = entry.trim().split(":");
  return { uid: Number(uid), gid: Number(gid) };
}
