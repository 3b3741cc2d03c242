// The reconciler in-process: rows left in every state a crash can leave, settled by two
// reconcilers at once, and never while someone works on them.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { status } from "@grpc/grpc-js";
import type { DatabasePool } from "slonik";
import { z } from "zod";
import { DatabaseStatus } from "../gen/qod/v1/database";
import { createLifecycle, type Lifecycle } from "../src/databases/lifecycle";
import { lockDatabaseName } from "../src/databases/queries";
import { CREATED_BY, createServers, type Servers } from "../src/databases/servers";
import { createVault } from "../src/vault";
import { createPool, pgUrl } from "../src/db/pool";
import { sql } from "../src/db/sql";
import { startTestApp, TEST_VAULT_KEY, type TestApp } from "./helpers/app";
import { expectError } from "./helpers/clients";
import { assertCatalog, dropDatabasesWithPrefix, pgDatabases } from "./helpers/databases";
import { quietLogger, sharedPostgres, uniquePrefix } from "./helpers/postgres";
import { createMetrics } from "../src/metrics";

describe("Reconciler", function () {
  this.timeout(120_000);
  let app: TestApp;
  let servers: Servers;
  let lifecycle: Lifecycle;
  const p = uniquePrefix("r");
  const tenant = p;
  const target = () => sharedPostgres().target;
  const full = (suffix: string) => `${p}_${suffix}`;
  const dataPath = (suffix: string) => `/lake/${full(suffix)}/`;
  const onServer = async (suffix: string) => (await pgDatabases(sharedPostgres().admin, full(suffix))).includes(full(suffix));
  const State = z.object({ status: z.string(), status_message: z.string() });
  const stateOf = (suffix: string) => app.pool.maybeOne(sql.type(State)`SELECT status, status_message FROM databases WHERE name = ${full(suffix)}`);

  /** A row as a process killed mid-way leaves it. */
  async function leftover(
    suffix: string,
    status: "PROVISIONING" | "DELETING",
    options: { started?: boolean; ageSec?: number; requestId?: string } = {},
  ): Promise<void> {
    await app.pool.query(sql.typeAlias("void")`
      INSERT INTO databases (id, tenant, name, suffix, kind, effective_data_path, metastore, status, request_id, provisioning_started_at, updated_at)
      VALUES (${`td-${randomBytes(16).toString("hex")}`}, ${tenant}, ${full(suffix)}, ${suffix}, 'ducklake', ${dataPath(suffix)},
              ${sql.jsonb({ dbName: full(suffix) })}, ${status}, ${options.requestId ?? null},
              ${options.started === false ? null : sql.fragment`now()`}, now() - make_interval(secs => ${options.ageSec ?? 60}))`);
  }

  const makeDatabase = (suffix: string, withCatalog: boolean) =>
    servers.withAdmin(target(), (admin) => admin.createDatabase(full(suffix))).then(() =>
      withCatalog ? servers.writeCatalog(target(), full(suffix), { dataPath: dataPath(suffix), encrypted: false, createdBy: CREATED_BY, schemas: [] }) : undefined,
    );

  before(async () => {
    // The app's own reconciler passes once at start (nothing to do) and not again during the suite.
    app = await startTestApp({ env: { QOD_RECONCILE_INTERVAL_SEC: "86400" } });
    await app.reconciled; // its pass at start must not take the leftovers made below
    await app.clients.tenants.createTenant({ name: tenant });
    servers = createServers(quietLogger);
    lifecycle = createLifecycle({ lockPool: app.state.lockPool, lockSlots: app.state.lockSlots, servers, vault: createVault(TEST_VAULT_KEY), defaults: target(), logger: quietLogger, metrics: createMetrics() });
  });
  after(async () => {
    await servers?.end();
    await app?.stop();
    await dropDatabasesWithPrefix(sharedPostgres(), p);
  });

  it("completes or rolls back every leftover exactly once with two reconcilers at once, and skips what is in use", async () => {
    await leftover("whole", "PROVISIONING");
    await makeDatabase("whole", true);
    await leftover("partial", "PROVISIONING");
    await makeDatabase("partial", false);
    await leftover("absent", "PROVISIONING");
    await leftover("foreign", "PROVISIONING", { started: false });
    await makeDatabase("foreign", false); // exists, but CREATE DATABASE was never sent for this row
    await leftover("deleting", "DELETING");
    await makeDatabase("deleting", true);
    await leftover("young", "PROVISIONING", { ageSec: 0 });
    await leftover("busy", "PROVISIONING");

    // A live process works on `busy`: it holds the name's lock on its own session.
    const live: DatabasePool = await createPool(pgUrl(target(), app.database), quietLogger, { maximumPoolSize: 1 });
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const holding = new Promise<void>((resolve) => (locked = resolve));
    const worker = live.connect(async (conn) => {
      await lockDatabaseName(conn, full("busy"));
      locked();
      await released;
    });
    await holding;

    // Two reconcilers' passes at once (as two replicas run them).
    const second = createLifecycle({ lockPool: app.state.lockPool, lockSlots: app.state.lockSlots, servers, vault: createVault(TEST_VAULT_KEY), defaults: target(), logger: quietLogger, metrics: createMetrics() });
    const counts = await Promise.all([lifecycle.settleAbandoned(5_000), second.settleAbandoned(5_000)]);
    assert.equal(counts[0] + counts[1], 5, `settled ${counts.join(" + ")}`);

    assert.equal((await stateOf("whole"))?.status, "READY");
    await assertCatalog(target(), full("whole"), { schemas: ["main"], dataPath: dataPath("whole") });
    assert.deepEqual(await stateOf("partial"), { status: "FAILED", status_message: "provisioning was interrupted; everything it created was rolled back" });
    assert.equal(await onServer("partial"), false);
    assert.equal((await stateOf("absent"))?.status, "FAILED");
    assert.equal((await stateOf("foreign"))?.status, "FAILED");
    assert.equal(await onServer("foreign"), true, "a database this row never created is not dropped");
    assert.equal(await stateOf("deleting"), null);
    assert.equal(await onServer("deleting"), false);
    assert.equal((await stateOf("young"))?.status, "PROVISIONING", "inside the grace period");
    assert.equal((await stateOf("busy"))?.status, "PROVISIONING", "locked by a live process");

    release();
    await worker;
    await live.end();
    assert.equal(await lifecycle.settleAbandoned(5_000), 1);
    assert.equal((await stateOf("busy"))?.status, "FAILED");
    assert.equal(await lifecycle.settleAbandoned(0), 1);
    assert.equal((await stateOf("young"))?.status, "FAILED");
  });

  it("a repeat of an interrupted create settles it and answers the outcome", async () => {
    const requestId = `${p}-interrupted`;
    await leftover("resumed", "PROVISIONING", { requestId, ageSec: 0 });
    await makeDatabase("resumed", true);
    const database = await app.clients.databases.createDatabase({ tenant, name: "resumed", requestId });
    assert.equal(database?.status, DatabaseStatus.READY);
    assert.equal((await stateOf("resumed"))?.status, "READY");
  });

  it("a delete of an interrupted create settles it first (dropping what it made) and then deletes the row", async () => {
    await leftover("halfdel", "PROVISIONING", { ageSec: 0 });
    await makeDatabase("halfdel", false);
    await app.clients.databases.deleteDatabase({ tenant, name: "halfdel" });
    assert.equal(await stateOf("halfdel"), null);
    assert.equal(await onServer("halfdel"), false);
  });

  it("refuses a tenant delete while one of its databases is PROVISIONING, and allows it once settled", async () => {
    const t = `${p}_busyt`;
    await app.clients.tenants.createTenant({ name: t });
    await app.pool.query(sql.typeAlias("void")`
      INSERT INTO databases (id, tenant, name, suffix, kind, status, updated_at)
      VALUES (${`td-${randomBytes(16).toString("hex")}`}, ${t}, ${`${t}_x`}, 'x', 'ducklake', 'PROVISIONING', now() - interval '1 minute')`);
    await expectError(app.clients.tenants.deleteTenant({ name: t }), status.UNAVAILABLE, "unavailable");
    await lifecycle.settleAbandoned();
    await app.clients.tenants.deleteTenant({ name: t });
  });
});
