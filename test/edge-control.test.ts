// What the control plane's snapshot does to sessions: disabling refuses new handshakes only; a ban,
// a terminate and a removed pool end open sessions with a clean FATAL; a changed upstream replaces
// only that pool's server connections; a killed engine comes back with its routes.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Query, type Client } from "pg";
import type { EdgePool, EdgeTenant } from "../src/edge/snapshot";
import {
  asSuperuser,
  createUpstreamDatabase,
  dropUpstreamDatabase,
  makePool,
  makeTenant,
  pgClient,
  pgConnectError,
  requireTools,
  startEdge,
  type RunningEdge,
  type UpstreamDatabase,
} from "./helpers/edge";
import { waitFor } from "./helpers/wait";
import { uniquePrefix } from "./helpers/postgres";

const PASSWORD = "control-password";

/** How a client's connection ended: the error it got (if any), once it has ended. */
function endingOf(client: Client): Promise<Error | undefined> {
  return new Promise((resolve) => {
    let error: Error | undefined;
    client.on("error", (err) => (error ??= err));
    client.on("end", () => resolve(error));
  });
}

describe("edge control", () => {
  let running: RunningEdge;
  let db: UpstreamDatabase;
  const names = { a: uniquePrefix("cta"), b: uniquePrefix("ctb") };
  let poolA: EdgePool;
  let poolB: EdgePool;
  let tenantA: EdgeTenant;
  let tenantB: EdgeTenant;
  const apply = () => running.edge.apply([tenantA, tenantB]);
  const connectA = (port = running.transactionPort) => pgClient(port, `app.${names.a}`, PASSWORD, db.database);
  const connectB = (port = running.transactionPort) => pgClient(port, `app.${names.b}`, PASSWORD, db.database);
  /** The engine's server connections for a pool (both routes). */
  const servers = async (pool: EdgePool) => {
    const stats = (await running.edge.stats()).get(pool.id);
    return (stats?.serversActive ?? 0) + (stats?.serversIdle ?? 0);
  };
  const sleepers = async () =>
    asSuperuser("postgres", async (c) => (await c.query("select count(*)::int as n from pg_stat_activity where query = 'select pg_sleep(20)'")).rows[0].n as number);

  before(async function () {
    requireTools();
    db = await createUpstreamDatabase();
    running = await startEdge({ terminateTimeoutMs: 2_000 });
  });
  beforeEach(async () => {
    poolA = makePool(names.a, "app", PASSWORD, db);
    poolB = makePool(names.b, "app", PASSWORD, db);
    tenantA = makeTenant(names.a, [poolA]);
    tenantB = makeTenant(names.b, [poolB]);
    await apply();
  });
  after(async () => {
    await running?.edge.close();
    if (db) await dropUpstreamDatabase(db);
  });

  it("a disabled tenant refuses new handshakes while an open session keeps working", async () => {
    const open = await connectA(running.sessionPort);
    tenantA = { ...tenantA, disabled: true };
    await apply();
    const err = await pgConnectError(running.transactionPort, `app.${names.a}`, PASSWORD, db.database);
    assert.equal(err?.message, `tenant "${names.a}" is disabled`);
    assert.equal(err?.code, "28000");
    assert.deepEqual((await open.query("select 1 as one")).rows, [{ one: 1 }]);
    tenantA = { ...tenantA, disabled: false };
    await apply();
    const again = await connectA();
    await Promise.all([open.end(), again.end()]);
  });

  it("a disabled pool refuses new handshakes while an open session keeps working", async () => {
    const open = await connectA();
    tenantA = makeTenant(names.a, [{ ...poolA, disabled: true }]);
    await apply();
    const err = await pgConnectError(running.transactionPort, `app.${names.a}`, PASSWORD, db.database);
    assert.equal(err?.message, `pool "app" of tenant "${names.a}" is disabled`);
    assert.deepEqual((await open.query("select 1 as one")).rows, [{ one: 1 }]);
    await open.end();
  });

  it("a ban ends open sessions with the EBANNED FATAL, drops the servers and refuses new ones until it expires", async () => {
    const idle = await connectA(running.sessionPort);
    const busy = await connectA();
    const other = await connectB(running.sessionPort);
    const otherPid = (await other.query("select pg_backend_pid() as pid")).rows[0].pid;
    const idleEnded = endingOf(idle);
    const busyEnded = endingOf(busy);
    const sleeping = busy.query("select pg_sleep(20)").then(
      () => undefined,
      (err: Error) => err,
    );
    await waitFor("the sleep to start", async () => (await sleepers()) === 1);
    assert.ok((await servers(poolA)) >= 2);

    tenantA = { ...tenantA, ban: { reason: "unpaid invoice" } };
    await apply();
    // The idle client hears it as a connection error; the busy one as its query's error.
    assert.equal((await idleEnded)?.message, "(EBANNED) tenant is banned: unpaid invoice");
    assert.equal((await sleeping)?.message, "(EBANNED) tenant is banned: unpaid invoice");
    await busyEnded;
    const refused = await pgConnectError(running.transactionPort, `app.${names.a}`, PASSWORD, db.database);
    assert.equal(refused?.message, "(EBANNED) tenant is banned: unpaid invoice");
    assert.equal((await servers(poolA)) , 0, "the route's server connections are dropped");
    await waitFor("the sleeping backend to go", async () => (await sleepers()) === 0);
    assert.equal((await other.query("select pg_backend_pid() as pid")).rows[0].pid, otherPid, "the other tenant is untouched");

    tenantA = { ...tenantA, ban: { reason: "unpaid invoice", until: Date.now() - 1 } };
    await apply();
    const after = await connectA();
    await Promise.all([after.end(), other.end()]);
  });

  it("a ban injects its FATAL at a message boundary, even in the middle of a large result", async () => {
    const client = await connectA();
    const ended = endingOf(client);
    const rows = client.query(new Query("select repeat('x', 2000) as r from generate_series(1, 200000)"));
    const outcome = new Promise<Error | undefined>((resolve) => {
      rows.on("error", resolve);
      rows.on("end", () => resolve(undefined));
    });
    let banned = false;
    rows.on("row", () => {
      if (banned) return;
      banned = true;
      tenantA = { ...tenantA, ban: { reason: "mid-stream" } };
      void apply();
    });
    assert.equal((await outcome)?.message, "(EBANNED) tenant is banned: mid-stream", "the client parsed a clean ErrorResponse");
    await ended;
  });

  it("terminate closes the tenant's sessions and servers, and lets new ones in", async () => {
    const open = await connectA(running.sessionPort);
    const other = await connectB();
    const ended = endingOf(open);
    assert.equal(await servers(poolA), 1);
    await running.edge.terminate(names.a);
    assert.equal((await ended)?.message, "terminating connection due to administrator command");
    assert.equal(await servers(poolA), 0, "the tenant's server connections are dropped");
    assert.deepEqual((await other.query("select 1 as one")).rows, [{ one: 1 }]);
    const again = await connectA();
    await Promise.all([again.end(), other.end()]);
  });

  it("a removed pool's sessions are closed; a removed tenant's too", async () => {
    const open = await connectA(running.sessionPort);
    const other = await connectB(running.sessionPort);
    const ended = endingOf(open);
    tenantA = makeTenant(names.a, []);
    await apply();
    assert.equal((await ended)?.message, `terminating connection because pool "app" of tenant "${names.a}" was removed`);
    const refused = await pgConnectError(running.transactionPort, `app.${names.a}`, PASSWORD, db.database);
    assert.equal(refused?.code, "28P01", "an unknown user now");

    const otherEnded = endingOf(other);
    await running.edge.apply([]);
    assert.match((await otherEnded)?.message ?? "", /was removed/);
  });

  it("a changed upstream user replaces only that pool's server connections; nobody is dropped", async () => {
    const second = `${db.role}_2`;
    const secondPassword = randomBytes(8).toString("hex");
    await asSuperuser("postgres", (c) => c.query(`CREATE ROLE ${c.escapeIdentifier(second)} LOGIN PASSWORD ${c.escapeLiteral(secondPassword)}`)); // PUBLIC may CONNECT
    try {
      const txClient = await connectA();
      const sessionClient = await connectA(running.sessionPort);
      const other = await connectB(running.sessionPort);
      const user = async (c: Client) => (await c.query("select current_user as u, pg_backend_pid() as pid")).rows[0] as { u: string; pid: number };
      const sessionBefore = await user(sessionClient);
      const otherBefore = await user(other);
      assert.equal((await user(txClient)).u, db.role);

      poolA = { ...poolA, upstream: { ...poolA.upstream, user: second, password: secondPassword } };
      tenantA = makeTenant(names.a, [poolA]);
      await apply();

      await waitFor("transaction mode to reach the new user", async () => (await user(txClient)).u === second);
      assert.deepEqual(await user(sessionClient), sessionBefore, "an open session-mode session keeps its server until it ends");
      assert.deepEqual(await user(other), otherBefore, "the other pool keeps its server");
      await Promise.all([txClient.end(), sessionClient.end(), other.end()]);
      const fresh = await connectA(running.sessionPort);
      assert.equal((await user(fresh)).u, second);
      await fresh.end();
    } finally {
      await asSuperuser("postgres", async (c) => {
        await c.query("select pg_terminate_backend(pid) from pg_stat_activity where usename = $1", [second]);
        await c.query(`DROP ROLE IF EXISTS ${c.escapeIdentifier(second)}`);
      });
    }
  });

  it("a killed engine (SIGKILL) is restarted with its routes; its sessions end with a FATAL", async () => {
    const open = await connectA(running.sessionPort);
    const ended = endingOf(open);
    const before = running.edge.health().engines[0].pid!;
    process.kill(before, "SIGKILL");
    assert.equal((await ended)?.message, "lost the connection to the pooler");
    await waitFor("the engine to restart", () => {
      const engine = running.edge.health().engines[0];
      return Boolean(engine?.running && engine.pid !== before);
    });
    const again = await connectA();
    assert.deepEqual((await again.query("select 1 as one")).rows, [{ one: 1 }]);
    await again.end();
    assert.ok(running.edge.health().ok);
  });

  it("an edge whose run directory is too deep for a unix socket path runs its engines under the system's temporary directory", async () => {
    const deep = mkdtempSync(path.join(tmpdir(), `${"deep-".repeat(12)}`));
    const other = await startEdge({ runDir: deep });
    try {
      await other.edge.apply([tenantA]);
      const client = await pgClient(other.transactionPort, `app.${names.a}`, PASSWORD, db.database);
      assert.deepEqual((await client.query("select 1 as one")).rows, [{ one: 1 }]);
      await client.end();
      assert.deepEqual(readdirSync(deep), []);
    } finally {
      await other.edge.close();
      rmSync(deep, { recursive: true, force: true });
    }
  });
});
