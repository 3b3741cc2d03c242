// Crash safety of pools end to end: the real server as a child process, SIGKILLed in each window of
// CreatePool and DeletePool where the state and the Postgres server disagree (row written, role not
// made; role made, row not ready; row dropping, role not dropped). The next start after the grace
// period takes every such pool back: no row, no role, nothing served.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Client } from "pg";
import type { DatabasePool } from "slonik";
import { z } from "zod";
import { poolRoleOf } from "../src/databases/roles";
import { freePort } from "../src/db/embedded";
import { createPool, pgUrl } from "../src/db/pool";
import { sql } from "../src/db/sql";
import { testEnv } from "./helpers/app";
import { clientsFor, type Clients } from "./helpers/clients";
import { dropDatabasesWithPrefix } from "./helpers/databases";
import { createTestDatabase, dropDatabase, quietLogger, sharedPostgres, uniquePrefix } from "./helpers/postgres";
import { removeServerData, startServerProcess, type ServerProcess } from "./helpers/process";
import { waitFor } from "./helpers/wait";

const PoolState = z.object({ id: z.string(), name: z.string(), role_state: z.string() });

describe("pool crash safety (SIGKILL inside CreatePool and DeletePool, restart, reconcile)", function () {
  this.timeout(180_000);
  const tenant = uniquePrefix("pk");
  let stateDatabase: string;
  let dataDir: string;
  let env: Record<string, string>;
  let state: DatabasePool;
  let server: ServerProcess | undefined;
  let clients: Clients | undefined;
  const auth = () => ({ apiKey: env.QOD_API_KEY });

  async function start(): Promise<Clients> {
    const grpcPort = await freePort();
    env.QOD_GRPC_PORT = String(grpcPort);
    server = await startServerProcess(env, grpcPort);
    clients = clientsFor(`127.0.0.1:${grpcPort}`);
    return clients;
  }
  async function kill(): Promise<void> {
    clients?.close();
    clients = undefined;
    await server?.kill("SIGKILL");
    server = undefined;
  }
  const pools = () => state.any(sql.type(PoolState)`SELECT id, name, role_state FROM pools WHERE tenant = ${tenant} ORDER BY name`);
  const roleExists = async (role: string) =>
    superuser(async (c) => (await c.query("select count(*)::int as n from pg_roles where rolname = $1", [role])).rows[0].n === 1);

  /** A superuser session on the shared server, for locks and catalog reads. */
  async function superuser<T>(run: (client: Client) => Promise<T>): Promise<T> {
    const { target } = sharedPostgres();
    const client = new Client({ host: target.host, port: target.port, user: target.user, password: target.password, database: "postgres" });
    await client.connect();
    try {
      return await run(client);
    } finally {
      await client.end();
    }
  }
  /** Holds a lock in an open transaction until release() (a statement the service waits behind). */
  async function hold(database: string, statement: string): Promise<{ release(): Promise<void> }> {
    const { target } = sharedPostgres();
    const client = new Client({ host: target.host, port: target.port, user: target.user, password: target.password, database });
    await client.connect();
    await client.query("BEGIN");
    await client.query(statement);
    return {
      async release() {
        await client.query("ROLLBACK");
        await client.end();
      },
    };
  }
  /**
   * SIGKILL closes the dead server's sockets, but a backend waiting for a lock notices only once it
   * has the lock, and would then finish the statement: ends them, as their client is gone.
   */
  const endOrphanedWaiters = () =>
    superuser((c) => c.query("select pg_terminate_backend(pid) from pg_stat_activity where wait_event_type = 'Lock' and pid <> pg_backend_pid()"));
  /** Starts a call that will hang, and swallows how it ends (the server dies under it). */
  const hanging = (call: Promise<unknown>) => void call.catch(() => undefined);

  before(async () => {
    stateDatabase = await createTestDatabase();
    dataDir = mkdtempSync(path.join(tmpdir(), "qod-pool-crash-"));
    env = testEnv(stateDatabase, dataDir, { QOD_RECONCILE_INTERVAL_SEC: "1", QOD_LOG_LEVEL: "warn" });
    state = await createPool(pgUrl(sharedPostgres().target, stateDatabase), quietLogger, { maximumPoolSize: 2 });
    const c = await start();
    await c.tenants.createTenant({ name: tenant }, auth());
    await c.databases.createDatabase({ tenant, name: "sales" }, auth());
    await c.pools.createPool({ tenant, tenantDb: "sales", pool: "doomed" }, auth());
  });
  after(async () => {
    await kill();
    await state?.end();
    await removeServerData(dataDir);
    await dropDatabasesWithPrefix(sharedPostgres(), tenant);
    await dropDatabase(sharedPostgres(), stateDatabase);
  });

  it("takes back, after the grace period, a pool killed before its role, one killed before it was ready, and one killed while dropped", async () => {
    // 1. Row written, role never made: CREATE ROLE waits behind a lock on the roles catalog.
    let roles = await hold("postgres", "LOCK TABLE pg_authid IN SHARE MODE");
    hanging(clients!.pools.createPool({ tenant, tenantDb: "sales", pool: "early" }, auth()));
    await waitFor("the early row", async () => (await pools()).some((p) => p.name === "early"));
    await kill();
    await endOrphanedWaiters();
    await roles.release();

    // 2. Role made, row never marked ready: the last UPDATE waits behind a lock on pools.
    await start();
    roles = await hold("postgres", "LOCK TABLE pg_authid IN SHARE MODE");
    hanging(clients!.pools.createPool({ tenant, tenantDb: "sales", pool: "late" }, auth()));
    await waitFor("the late row", async () => (await pools()).some((p) => p.name === "late"));
    const rows = await hold(stateDatabase, "LOCK TABLE pools IN EXCLUSIVE MODE");
    await roles.release();
    const late = (await pools()).find((p) => p.name === "late")!;
    await waitFor("the late role", () => roleExists(poolRoleOf(late.id)));
    await kill();
    await endOrphanedWaiters();
    await rows.release();

    // 3. Marked dropping (out of the data plane), role never dropped.
    await start();
    roles = await hold("postgres", "LOCK TABLE pg_authid IN SHARE MODE");
    hanging(clients!.pools.deletePool({ tenant, pool: "doomed" }, auth()));
    await waitFor("the doomed row to be dropping", async () => (await pools()).some((p) => p.name === "doomed" && p.role_state === "dropping"));
    await kill();
    await endOrphanedWaiters();
    await roles.release();

    const left = await pools();
    assert.deepEqual(left.map((p) => [p.name, p.role_state]), [["doomed", "dropping"], ["early", "creating"], ["late", "creating"]]);
    assert.ok(await roleExists(poolRoleOf(late.id)));
    assert.ok(await roleExists(poolRoleOf(left[0].id)));

    // Before the grace period nothing is touched (a call of another replica may still be at work).
    const c = await start();
    await new Promise((r) => setTimeout(r, 2_500));
    assert.equal((await pools()).length, 3);
    assert.deepEqual((await c.pools.listPools({ tenant }, auth())).pools.map((p) => [p.pool, p.ready]), [["doomed", false], ["early", false], ["late", false]]);

    // As if the grace period had passed: the reconciler takes all three back.
    await state.query(sql.typeAlias("void")`UPDATE pools SET updated_at = now() - interval '1 hour' WHERE tenant = ${tenant}`);
    await waitFor("the pools to be taken back", async () => (await pools()).length === 0, { timeoutMs: 15_000 });
    for (const p of left) assert.equal(await roleExists(poolRoleOf(p.id)), false, `${p.name}'s role is dropped`);
  });

  it("finishes an interrupted DeletePool when it is called again, without waiting for the reconciler", async () => {
    const made = await clients!.pools.createPool({ tenant, tenantDb: "sales", pool: "again" }, auth());
    const roles = await hold("postgres", "LOCK TABLE pg_authid IN SHARE MODE");
    hanging(clients!.pools.deletePool({ tenant, pool: "again" }, auth()));
    await waitFor("the row to be dropping", async () => (await pools()).some((p) => p.role_state === "dropping"));
    await kill();
    await endOrphanedWaiters();
    await roles.release();
    const c = await start();
    assert.deepEqual(await c.pools.deletePool({ tenant, pool: "again" }, auth()), {});
    assert.deepEqual(await pools(), []);
    assert.equal(await roleExists(poolRoleOf(made.id)), false);
    await c.databases.deleteDatabase({ tenant, name: "sales", dropDatabase: true }, auth());
    await c.tenants.deleteTenant({ name: tenant }, auth());
  });
});
