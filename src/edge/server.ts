// The edge: a Postgres-protocol front on two ports (transaction and session mode) that routes each
// client by tenant, authenticates it with SCRAM-SHA-256, applies the tenant and pool checks, and
// relays its session to a PgBouncer engine over a private unix socket. It decides nothing of its
// own: `apply()` hands it the control plane's state, which it enforces at every handshake.
import { readFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { createSecureContext, type SecureContext } from "node:tls";
import type { Logger } from "pino";
import { DummyVerifiers, parseScramVerifier, ScramError, type ScramVerifier } from "../scram";
import { admissionRefusal, clientIdentity, upstreamParameters, wantsReplication, type ClientIdentity } from "./admission";
import { ENGINE_LOGIN_USER } from "./engine";
import { EngineSet } from "./engines";
import { fatal, fatalMessage, type Fatal } from "./fatal";
import { authenticateScram, ClientConnection, ClientGone, HandshakeRefused, readStartup } from "./handshake";
import { authenticationSaslFinal, cancelKeyId, ProtocolError, type CancelKey } from "./protocol";
import { Session } from "./session";
import { routeName, type EdgeTenant, type PoolMode } from "./snapshot";
import { changeBetween, compileState, emptyState, poolStats, profilesOf, routesByProfile, type EdgeState, type PoolEntry, type PoolStats } from "./state";
import type { CertificatePair } from "./tls";
import { forwardCancel, loginUpstream } from "./upstream";

export interface EdgeOptions {
  /** Address both ports bind (QOD_EDGE_HOST). */
  host: string;
  /** Transaction-mode port (QOD_EDGE_TX_PORT, 6543); 0 picks a free one. */
  transactionPort: number;
  /** Session-mode port (QOD_EDGE_SESSION_PORT, 5432); 0 picks a free one. */
  sessionPort: number;
  /** Path of the pgbouncer binary (findPgbouncer() resolves QOD_PGBOUNCER_BIN or PATH). */
  pgbouncerBinary: string;
  /** Where the engines' private directories are made (the system temp directory by default). */
  runDir?: string;
  /** The user engines run as when the edge runs as root (default `nobody`). */
  engineUser?: string;
  /** CA bundle for verify-full pools that give no CA of their own. */
  systemCaFile?: string;
  /** Certificate and key (PEM): with them the edge answers SSLRequest with `S`. */
  tls?: CertificatePair;
  logger: Logger;
  /** From accept to authenticated and checked (default 5 s). */
  handshakeTimeoutMs?: number;
  /** From checked to the engine's ReadyForQuery, which may wait for the first server login (default 15 s). */
  upstreamTimeoutMs?: number;
  /** Client connections open at once over both ports (default 10,000, or what the open file limit holds at two descriptors each). */
  maxConnections?: number;
  /** How long an ended session may take to reach a message boundary and flush its FATAL (default 5 s). */
  terminateTimeoutMs?: number;
}

export type { PoolStats } from "./state";

export interface EdgeHealth {
  /** Listening, and when any engine has routes, at least one of those runs (see health()). */
  ok: boolean;
  listening: boolean;
  /** Engine restarts since the edge started, of every engine it ran: only grows. */
  restarts: number;
  connections: number;
  engines: Array<{ profile: string; running: boolean; pid: number | undefined; routes: number; restarts: number }>;
}

const MAX_CANCELS_IN_FLIGHT = 64;
/** Cancels sent at once before sessions are ended (each is an engine client for a moment). */
const CANCEL_BATCH = 32;
const CANCEL_BEFORE_END_TIMEOUT_MS = 2_000;

export class Edge {
  readonly #options: Required<Pick<EdgeOptions, "handshakeTimeoutMs" | "upstreamTimeoutMs" | "maxConnections" | "terminateTimeoutMs">> & EdgeOptions;
  readonly #log: Logger;
  readonly #engines: EngineSet;
  readonly #dummies = new DummyVerifiers();
  readonly #secureContext: SecureContext | undefined;
  readonly #servers: Record<PoolMode, Server>;
  #state: EdgeState = emptyState();
  readonly #handshakes = new Set<ClientConnection>();
  readonly #sessions = new Set<Session>();
  readonly #cancelTargets = new Map<string, Session>();
  /** Where every engine socket's reads land before they are copied out (see EngineSocket). */
  readonly #readScratch = Buffer.allocUnsafe(64 * 1024);
  #cancelsInFlight = 0;
  #applyQueue: Promise<unknown> = Promise.resolve();
  #listening = false;
  #closing = false;

  constructor(options: EdgeOptions) {
    this.#options = {
      ...options,
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? 5_000,
      upstreamTimeoutMs: options.upstreamTimeoutMs ?? 15_000,
      maxConnections: options.maxConnections ?? defaultMaxConnections(),
      terminateTimeoutMs: options.terminateTimeoutMs ?? 5_000,
    };
    this.#log = options.logger.child({ component: "edge" });
    this.#secureContext = options.tls ? createSecureContext({ cert: options.tls.cert, key: options.tls.key }) : undefined;
    this.#engines = new EngineSet({
      binary: options.pgbouncerBinary,
      runDir: options.runDir,
      runAsUser: options.engineUser ?? "nobody",
      systemCaFile: options.systemCaFile ?? "/etc/ssl/certs/ca-certificates.crt",
      maxClientConn: this.#options.maxConnections + 100, // room for the console and cancel requests
      clientLoginTimeoutSec: Math.ceil(this.#options.upstreamTimeoutMs / 1000) + 5,
      logger: this.#log,
    });
    this.#servers = {
      transaction: createServer((socket) => this.#accept(socket, "transaction")),
      session: createServer((socket) => this.#accept(socket, "session")),
    };
    for (const server of Object.values(this.#servers)) {
      // e.g. EMFILE on accept: the listener keeps running; the process must not fall over.
      server.on("error", (err) => this.#listening && this.#log.error({ err }, "edge listener error"));
    }
  }

  /** Binds both ports; resolves with the ports bound. */
  async listen(): Promise<{ transactionPort: number; sessionPort: number }> {
    const bind = (server: Server, port: number) =>
      new Promise<number>((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, this.#options.host, () => {
          server.off("error", reject);
          resolve((server.address() as { port: number }).port);
        });
      });
    const limit = openFileLimit();
    const needed = descriptorsFor(this.#options.maxConnections);
    if (limit !== undefined && limit < needed) {
      this.#log.warn({ openFileLimit: limit, maxConnections: this.#options.maxConnections, needed }, "the open file limit is too low for max connections; raise it (ulimit -n) or lower max connections");
    }
    const transactionPort = await bind(this.#servers.transaction, this.#options.transactionPort);
    const sessionPort = await bind(this.#servers.session, this.#options.sessionPort);
    this.#listening = true;
    this.#log.info({ host: this.#options.host, transactionPort, sessionPort, tls: Boolean(this.#secureContext) }, "edge listening");
    return { transactionPort, sessionPort };
  }

  /**
   * Replaces the whole picture with `tenants` and enforces the difference: sessions of removed
   * pools end, a newly banned tenant's sessions end with EBANNED and its server connections are
   * dropped, engines get their new routes (a changed upstream replaces only that pool's server
   * connections). Disabling only refuses new handshakes. Calls run one after another.
   */
  apply(tenants: Iterable<EdgeTenant>): Promise<void> {
    const list = [...tenants];
    const run = this.#applyQueue.then(() => this.#apply(list));
    this.#applyQueue = run.catch(() => undefined);
    return run;
  }

  /** Closes the tenant's sessions and drops its server connections (Supavisor's terminate). */
  async terminate(tenantName: string): Promise<void> {
    const entry = this.#state.tenants.get(tenantName);
    if (!entry) return;
    const pools = [...entry.pools.values()];
    await this.#endSessions(pools.flatMap((p) => [...p.sessions].map((s) => [s, fatal.terminated()] as const)));
    await this.#killServers(pools);
  }

  /** Live figures by pool id: the edge's sessions, and the engine's figures of both routes summed. */
  async stats(): Promise<Map<string, PoolStats>> {
    return poolStats(this.#state.pools, await this.#engines.figures());
  }

  /** Live figures of every pool, with its tenant's and its own name (the metrics' labels). */
  async namedStats(): Promise<Array<{ tenant: string; pool: string; stats: PoolStats }>> {
    const stats = await this.stats();
    return [...this.#state.pools].flatMap(([id, { pool }]) => {
      const figures = stats.get(id);
      return figures ? [{ tenant: pool.tenant, pool: pool.name, stats: figures }] : [];
    });
  }

  /**
   * Healthy when listening and, if any engine has routes, one of those runs: one profile's engine
   * starting or failing (a new CA, a crash loop) is that profile's trouble, shown per engine and
   * in the metrics, and must not take the replica (and its control plane) out of service.
   */
  health(): EdgeHealth {
    const engines = [...this.#engines.engines].map(([profile, engine]) => ({
      profile,
      running: engine.running,
      pid: engine.pid,
      routes: engine.routeCount,
      restarts: engine.restarts,
    }));
    const listening = this.#listening && !this.#closing;
    const routed = engines.filter((e) => e.routes > 0);
    const ok = listening && (routed.length === 0 || routed.some((e) => e.running));
    return { ok, listening, restarts: this.#engines.restarts, connections: this.#handshakes.size + this.#sessions.size, engines };
  }

  /**
   * Stops accepting, ends every session at a message boundary with 57P01 (as a Postgres fast
   * shutdown does), waits for them (at most terminateTimeoutMs), then stops the engines.
   */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    const stopped = Object.values(this.#servers).map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
    for (const conn of this.#handshakes) conn.refuse(fatal.shuttingDown());
    await this.#endSessions([...this.#sessions].map((s) => [s, fatal.shuttingDown()] as const));
    for (const conn of this.#handshakes) conn.socket.destroy();
    await this.#applyQueue;
    await this.#engines.close();
    if (this.#listening) await Promise.all(stopped);
    this.#listening = false;
    this.#log.info("edge closed");
  }

  // ---- applying snapshots ----------------------------------------------------------------------

  async #apply(list: EdgeTenant[]): Promise<void> {
    if (this.#closing) return;
    const next = await compileState(list, this.#log);
    const { ending, newlyBanned } = changeBetween(this.#state, next, Date.now());
    this.#state = next; // new handshakes see the new state from here on
    // Sessions end before their routes go, so each client gets its FATAL, not a cut connection.
    await this.#endSessions(ending);
    await this.#engines.sync(profilesOf(next.pools));
    await this.#killServers(newlyBanned);
  }

  /**
   * Ends sessions at message boundaries and waits until they are closed (bounded by the terminate
   * timeout). Queries they may be running are cancelled first: closing a connection alone leaves a
   * running query to finish on the server, which notices the closed socket only when it writes.
   */
  async #endSessions(ending: ReadonlyArray<readonly [Session, Fatal]>): Promise<void> {
    for (const [session] of ending) session.hold();
    const running = ending.map(([session]) => (session.cancel && session.busy ? session.cancel : undefined)).filter((c) => c !== undefined);
    await inBatches(running, CANCEL_BATCH, (c) => forwardCancel(c.socketPath, c.key, CANCEL_BEFORE_END_TIMEOUT_MS));
    for (const [session, reason] of ending) session.terminate(reason);
    await Promise.all(ending.map(([session]) => session.closed));
  }

  async #killServers(pools: readonly PoolEntry[]): Promise<void> {
    await Promise.all(
      [...routesByProfile(pools)].map(async ([profile, routes]) => {
        try {
          await this.#engines.engine(profile)?.killAndResume(routes);
        } catch (err) {
          this.#log.error({ err, engine: profile }, "could not drop server connections");
        }
      }),
    );
  }

  // ---- connections -----------------------------------------------------------------------------

  #accept(socket: Socket, mode: PoolMode): void {
    socket.on("error", () => undefined); // every failure ends in "close", handled where it matters
    if (this.#closing) {
      socket.destroy();
      return;
    }
    if (this.#handshakes.size + this.#sessions.size >= this.#options.maxConnections) {
      socket.end(fatalMessage(fatal.tooManyConnections()));
      socket.destroySoon();
      return;
    }
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    void this.#handshake(new ClientConnection(socket), mode);
  }

  async #handshake(conn: ClientConnection, mode: PoolMode): Promise<void> {
    this.#handshakes.add(conn);
    const address = conn.socket.remoteAddress ?? "";
    const timer = setTimeout(() => conn.refuse(fatal.handshakeTimeout()), this.#options.handshakeTimeoutMs);
    let admitted: { session: Session; entry: PoolEntry; parameters: Map<string, string> } | undefined;
    try {
      const startup = await readStartup(conn, this.#secureContext);
      if (startup.kind === "cancel") {
        conn.release();
        conn.socket.destroy(); // a cancel connection gets no answer
        this.#forwardCancel(startup.key);
        return;
      }
      admitted = await this.#authenticateAndAdmit(conn, startup.parameters, mode, address);
    } catch (err) {
      if (err instanceof ClientGone) conn.socket.destroy(); // nobody is there to read a FATAL
      else conn.refuse(this.#refusalOf(err, address));
      return;
    } finally {
      clearTimeout(timer);
      this.#handshakes.delete(conn);
    }
    if (!admitted) return;
    const { session, entry, parameters } = admitted;
    try {
      await this.#connectUpstream(session, entry, mode, parameters, conn.release());
    } catch (err) {
      this.#log.error({ err, pool: entry.pool.id }, "could not start the session");
      session.fail(fatalMessage(fatal.internal()));
    }
  }

  #refusalOf(err: unknown, address: string): Fatal {
    if (err instanceof HandshakeRefused) {
      this.#log.debug({ address, code: err.fatal.code, reason: err.fatal.message }, "handshake refused");
      return err.fatal;
    }
    if (err instanceof ProtocolError) return fatal.protocol(err.code, err.message);
    if (err instanceof ScramError) return fatal.protocol("08P01", err.message);
    this.#log.error({ err, address }, "handshake failed");
    return fatal.internal();
  }

  async #authenticateAndAdmit(
    conn: ClientConnection,
    parameters: Map<string, string>,
    mode: PoolMode,
    address: string,
  ): Promise<{ session: Session; entry: PoolEntry; parameters: Map<string, string> }> {
    const startupUser = parameters.get("user");
    if (!startupUser) throw new HandshakeRefused(fatal.noUser());
    if (wantsReplication(parameters.get("replication"))) throw new HandshakeRefused(fatal.replication());
    const identity = clientIdentity(startupUser, parameters.get("options"));
    if (!identity) throw new HandshakeRefused(fatal.noTenant(startupUser));

    // Unknown tenant, unknown user and wrong password go through the same exchange and end alike
    // (the dummy verifier is derived in every case, so that no path is cheaper than another).
    const dummy = this.#dummies.verifierFor(`${identity.tenant}\0${identity.user}`);
    const known = this.#state.tenants.get(identity.tenant)?.pools.get(identity.user);
    const fromAuthQuery = known ? undefined : await this.#authQueryVerifier(identity);
    const verifier = known?.verifier ?? fromAuthQuery ?? dummy;
    const serverFinal = await authenticateScram(conn, verifier);
    if (!serverFinal) throw new HandshakeRefused(fatal.authFailed(startupUser));
    // PgBouncer 1.18 cannot take such a role's login on a route with a forced user: it must be registered.
    if (!known) throw new HandshakeRefused(fatal.roleNotRegistered(identity.user, identity.tenant));

    // The checks read the state as it is now: a snapshot may have arrived during the exchange.
    const tenant = this.#state.tenants.get(identity.tenant);
    const entry = tenant?.pools.get(identity.user);
    if (!tenant || !entry || entry.pool.verifier !== known.pool.verifier) throw new HandshakeRefused(fatal.authFailed(startupUser));
    // Held until the engine's greeting (or a refusal) follows, so both go out in one write.
    conn.socket.cork();
    conn.send(authenticationSaslFinal(serverFinal));
    const refusal = admissionRefusal({
      tenant: tenant.tenant,
      allowList: tenant.allowList,
      pool: entry.pool,
      openSessions: entry.sessions.size,
      secure: conn.secure,
      address,
      database: parameters.get("database") || startupUser,
      now: Date.now(),
    });
    if (refusal) throw new HandshakeRefused(refusal);
    if (entry.unusable) throw new HandshakeRefused(entry.unusable);
    if (conn.gone) throw new ClientGone(); // timed out meanwhile
    if (this.#closing) throw new HandshakeRefused(fatal.shuttingDown());

    const sessions = entry.sessions;
    const session = new Session(conn.socket, this.#options.terminateTimeoutMs, (closed) => {
      sessions.delete(closed);
      this.#sessions.delete(closed);
      if (closed.cancel) this.#cancelTargets.delete(closed.cancel.keyId);
    });
    sessions.add(session);
    this.#sessions.add(session);
    this.#log.debug({ tenant: identity.tenant, user: identity.user, pool: entry.pool.id, mode }, "session admitted");
    return { session, entry, parameters };
  }

  /** A require_user:false tenant's unregistered role: its verifier through auth_query (a failure counts as unknown). */
  async #authQueryVerifier(identity: ClientIdentity): Promise<ScramVerifier | undefined> {
    const authQuery = this.#state.tenants.get(identity.tenant)?.tenant.authQuery;
    if (!authQuery) return undefined;
    try {
      const text = await authQuery(identity.user);
      return text === undefined ? undefined : parseScramVerifier(text);
    } catch (err) {
      this.#log.warn({ tenant: identity.tenant, err: err instanceof Error ? err.message : String(err) }, "auth_query failed");
      return undefined;
    }
  }

  async #connectUpstream(session: Session, entry: PoolEntry, mode: PoolMode, client: Map<string, string>, fromClient: Buffer): Promise<void> {
    const route = routeName(entry.pool.id, mode);
    const line = entry.lines![mode];
    const engine = this.#engines.engine(entry.profile);
    const started = Date.now();
    const serving = engine ? await engine.whenServing(route, line, this.#options.upstreamTimeoutMs) : false;
    if (!engine || !serving || session.done) {
      session.fail(fatalMessage(fatal.upstreamUnavailable()));
      return;
    }
    const remaining = Math.max(1, this.#options.upstreamTimeoutMs - (Date.now() - started));
    const login = await loginUpstream(engine.socketPath, this.#readScratch, upstreamParameters(ENGINE_LOGIN_USER, route, client), remaining);
    if (!login.ok) {
      this.#log.warn({ pool: entry.pool.id, mode, reason: login.reason }, "engine refused the session");
      session.fail(login.error ?? fatalMessage(fatal.upstreamUnavailable()));
      return;
    }
    if (login.cancelKey && !session.done) {
      const keyId = cancelKeyId(login.cancelKey);
      session.cancel = { key: login.cancelKey, keyId, socketPath: engine.socketPath };
      this.#cancelTargets.set(keyId, session);
    }
    session.attach(login.upstream, login.greeting, fromClient);
  }

  #forwardCancel(key: CancelKey): void {
    const target = this.#cancelTargets.get(cancelKeyId(key))?.cancel;
    if (!target || this.#cancelsInFlight >= MAX_CANCELS_IN_FLIGHT) return; // unknown keys are dropped silently
    this.#cancelsInFlight++;
    void forwardCancel(target.socketPath, key, 30_000).finally(() => this.#cancelsInFlight--);
  }
}

/** A client socket and an engine socket per session, and room for everything else. */
const descriptorsFor = (connections: number) => 2 * connections + 256;

/** 10,000 connections, or as many as this process's open file limit holds. */
function defaultMaxConnections(): number {
  const limit = openFileLimit();
  return limit === undefined ? 10_000 : Math.max(1, Math.min(10_000, Math.floor((limit - 256) / 2)));
}

/** This process's soft limit on open files (RLIMIT_NOFILE), from /proc; undefined where there is none. */
function openFileLimit(): number | undefined {
  try {
    const line = /^Max open files\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"));
    return line ? Number(line[1]) : undefined;
  } catch {
    return undefined;
  }
}

async function inBatches<T>(items: readonly T[], size: number, run: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(run));
}
