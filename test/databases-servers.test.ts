// DatabaseService with a second real Postgres server named by a metastore override, and the
// template contention (55006) that CREATE DATABASE must never surface.
import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import type { DatabasePool } from "slonik";
import { DatabaseStatus } from "../gen/qod/v1/database";
import { effectiveTarget } from "../src/databases/servers";
import { createPool, pgUrl } from "../src/db/pool";
import { sql } from "../src/db/sql";
import { startTestApp, type TestApp } from "./helpers/app";
import { expectError } from "./helpers/clients";
import { assertCatalog, dropDatabasesWithPrefix, pgDatabases } from "./helpers/databases";
import { quietLogger, sharedPostgres, startPostgres, uniquePrefix, type TestPostgres } from "./helpers/postgres";

describe("DatabaseService on two Postgres servers", function () {
  this.timeout(120_000);
  let app: TestApp;
  let other: TestPostgres;
  const p = uniquePrefix("s");
  const tenant = p;
  const overrides = () => ({
    pgHost: other.target.host,
    pgPort: String(other.target.port),
    pgUser: other.target.user,
    pgPassword: other.target.password ?? "",
  });
  const setTemplate0Connectable = (allow: boolean) =>
    other.admin.query(
      allow ? sql.typeAlias("void")`ALTER DATABASE template0 WITH ALLOW_CONNECTIONS true` : sql.typeAlias("void")`ALTER DATABASE template0 WITH ALLOW_CONNECTIONS false`,
    );

  before(async () => {
    other = await startPostgres();
    app = await startTestApp();
    await app.clients.tenants.createTenant({ name: tenant });
  });
  after(async () => {
    await app?.stop();
    await dropDatabasesWithPrefix(sharedPostgres(), p);
    await other?.stop();
  });

  it("provisions on the server the metastore override names, and drops it there", async () => {
    const database = await app.clients.databases.createDatabase({ tenant, name: "remote", metastore: overrides(), defaultSchema: "mart" });
    assert.equal(database?.status, DatabaseStatus.READY);
    const { pgPassword: _hidden, ...visible } = overrides();
    assert.deepEqual(database?.metastore, { ...visible, dbName: `${p}_remote` });
    assert.deepEqual(await pgDatabases(other.admin, p), [`${p}_remote`]);
    assert.deepEqual(await pgDatabases(sharedPostgres().admin, p), []);
    await assertCatalog(other.target, `${p}_remote`, { schemas: ["main", "mart"], dataPath: database?.effectiveDataPath ?? "" });

    await app.clients.databases.deleteDatabase({ tenant, name: "remote", dropDatabase: true });
    assert.deepEqual(await pgDatabases(other.admin, p), []);
  });

  it("never sends the default server's password to another server", () => {
    const defaults = { host: "127.0.0.1", port: 5432, user: "postgres", password: "default-pw" };
    assert.equal(effectiveTarget(defaults, {}, { metastore: {}, objectStore: {} }).password, "default-pw");
    assert.equal(effectiveTarget(defaults, { pgUser: "ann" }, { metastore: {}, objectStore: {} }).password, "default-pw");
    assert.equal(effectiveTarget(defaults, { pgPort: "5433" }, { metastore: {}, objectStore: {} }).password, undefined);
    assert.equal(effectiveTarget(defaults, { pgHost: "elsewhere" }, { metastore: {}, objectStore: {} }).password, undefined);
    assert.deepEqual(effectiveTarget(defaults, { pgHost: "elsewhere", pgPort: "6000" }, { metastore: { pgPassword: "own" }, objectStore: {} }), {
      host: "elsewhere",
      port: 6000,
      user: "postgres",
      password: "own",
    });
  });

  it("answers INVALID_ARGUMENT invalid_metastore when the other server refuses the credentials", async () => {
    const err = await expectError(
      app.clients.databases.createDatabase({ tenant, name: "badpw", metastore: { ...overrides(), pgPassword: "wrong-password" } }),
      status.INVALID_ARGUMENT,
      "invalid_metastore",
    );
    assert.doesNotMatch(err.message, /wrong-password/);
    const database = await app.clients.databases.getDatabase({ tenant, name: "badpw" });
    assert.equal(database?.status, DatabaseStatus.FAILED);
    assert.deepEqual(await pgDatabases(other.admin, p), []);
  });

  it("reports a failed drop, keeps the row DELETING, and finishes the drop on a later delete", async () => {
    await app.clients.databases.createDatabase({ tenant, name: "sticky", metastore: overrides() });
    // credentials the server refuses make the drop fail
    await app.clients.databases.updateDatabase({ tenant, name: "sticky", metastore: { pgPassword: "now-wrong" } });
    const err = await expectError(app.clients.databases.deleteDatabase({ tenant, name: "sticky", dropDatabase: true }), status.INVALID_ARGUMENT, "invalid_metastore");
    assert.match(err.message, /stays DELETING and the drop will be retried/);
    assert.equal((await app.clients.databases.getDatabase({ tenant, name: "sticky" })).status, DatabaseStatus.DELETING);
    assert.ok((await pgDatabases(other.admin, p)).includes(`${p}_sticky`));
    // no pool can be added to a database being dropped
    await expectError(app.clients.pools.createPool({ tenant, tenantDb: "sticky", pool: `${p}_late` }), status.INVALID_ARGUMENT, "invalid_tenant_db");

    await app.clients.databases.updateDatabase({ tenant, name: "sticky", metastore: { pgPassword: other.target.password ?? "" } });
    assert.deepEqual(await app.clients.databases.deleteDatabase({ tenant, name: "sticky" }), {});
    assert.ok(!(await pgDatabases(other.admin, p)).includes(`${p}_sticky`), "the pending drop was finished");
    await expectError(app.clients.databases.getDatabase({ tenant, name: "sticky" }), status.NOT_FOUND, "not_found");
  });

  describe("template contention (55006)", () => {
    let holder: DatabasePool | undefined;
    /** Holds a session on template0 (opened to connections for the test) until `release()`. */
    async function occupyTemplate0(): Promise<() => Promise<void>> {
      await setTemplate0Connectable(true);
      holder = await createPool(pgUrl(other.target, "template0"), quietLogger, { maximumPoolSize: 1 });
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let connected!: () => void;
      const ready = new Promise<void>((resolve) => (connected = resolve));
      const session = holder.connect(async () => {
        connected();
        await held;
      });
      await Promise.race([ready, session]);
      return async () => {
        release();
        await session;
        await holder?.end();
        holder = undefined;
      };
    }
    afterEach(async () => {
      await holder?.end();
      await setTemplate0Connectable(false);
    });

    it("retries CREATE DATABASE while the template is busy, so the client never sees it", async () => {
      const release = await occupyTemplate0();
      const started = Date.now();
      const created = app.clients.databases.createDatabase({ tenant, name: "busy", metastore: overrides() });
      // Postgres waits 5 s for the template's sessions before it fails with 55006; outlast that.
      setTimeout(() => void release(), 5_500);
      const database = await created;
      assert.ok(Date.now() - started > 5_000, "the first attempt met the busy template");
      assert.equal(database?.status, DatabaseStatus.READY);
      assert.ok((await pgDatabases(other.admin, p)).includes(`${p}_busy`));
    });

    it("answers UNAVAILABLE, not a raw 55006, when the template stays busy", async () => {
      const release = await occupyTemplate0();
      try {
        const err = await expectError(app.clients.databases.createDatabase({ tenant, name: "stuck", metastore: overrides() }), status.UNAVAILABLE, "unavailable");
        assert.doesNotMatch(err.message, /template0|accessed by other users/);
      } finally {
        await release();
      }
      assert.ok(!(await pgDatabases(other.admin, p)).includes(`${p}_stuck`));
      const database = await app.clients.databases.getDatabase({ tenant, name: "stuck" });
      assert.equal(database?.status, DatabaseStatus.FAILED);
    });
  });
});
