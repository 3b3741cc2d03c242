// DatabaseService against the run's real Postgres: provisioning, validation, kinds, updates,
// deletes, secrets and concurrency.
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { Metadata, status } from "@grpc/grpc-js";
import { z } from "zod";
import { DatabaseStatus, type Database } from "../gen/qod/v1/database";
import type { Principal } from "../src/call/principal";
import { createLifecycle, databaseHandlers } from "../src/databases";
import { createServers, type Servers } from "../src/databases/servers";
import { openSecrets } from "../src/databases/vault";
import { createVault } from "../src/vault";
import { freePort } from "../src/db/embedded";
import { createPool, pgUrl } from "../src/db/pool";
import { sql } from "../src/db/sql";
import { AppError } from "../src/errors";
import { createLogger } from "../src/logger";
import type { AuthedContext } from "../src/call/context";
import { startTestApp, TEST_API_KEY, TEST_VAULT_KEY, type TestApp } from "./helpers/app";
import { expectError } from "./helpers/clients";
import { assertCatalog, dropDatabasesWithPrefix, pgDatabases } from "./helpers/databases";
import { quietLogger, sharedPostgres, uniquePrefix } from "./helpers/postgres";
import { createMetrics } from "../src/metrics";

describe("DatabaseService", function () {
  this.timeout(120_000);
  let app: TestApp;
  const p = uniquePrefix("d");
  const tenant = p;
  const postgres = () => sharedPostgres();
  const databasesOnServer = () => pgDatabases(postgres().admin, p);
  const rowCount = () => app.pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*)::int AS n FROM databases`);
  const create = (name: string, extra: Record<string, unknown> = {}) => app.clients.databases.createDatabase({ tenant, name, ...extra });
  const StateRow = z.object({ status: z.string(), status_reason: z.string(), status_message: z.string() });
  const stateOf = (name: string) => app.pool.maybeOne(sql.type(StateRow)`SELECT status, status_reason, status_message FROM databases WHERE name = ${name}`);

  before(async () => {
    app = await startTestApp();
    await app.clients.tenants.createTenant({ name: tenant });
  });
  after(async () => {
    await app?.stop();
    await dropDatabasesWithPrefix(postgres(), p);
  });

  describe("CreateDatabase (ducklake)", () => {
    it("provisions the Postgres database with a DuckLake v1.0 catalog holding the default schema", async () => {
      const database = await create("sales", { defaultSchema: "mart" });
      assert.ok(database);
      assert.match(database.id, /^td-[0-9a-f]{32}$/);
      assert.equal(database.tenant, tenant);
      assert.equal(database.name, `${p}_sales`);
      assert.equal(database.suffix, "sales");
      assert.equal(database.kind, "ducklake");
      assert.equal(database.status, DatabaseStatus.READY);
      assert.equal(database.statusMessage, "");
      assert.deepEqual(database.metastore, { dbName: `${p}_sales` });
      assert.equal(database.dataPath, "");
      assert.equal(database.effectiveDataPath, `${app.config.dataPath}/${p}/sales/`);
      assert.equal(database.defaultSchema, "mart");
      assert.ok(database.createTime instanceof Date);
      assert.ok((await databasesOnServer()).includes(`${p}_sales`));
      await assertCatalog(postgres().target, `${p}_sales`, { schemas: ["main", "mart"], dataPath: database.effectiveDataPath });
    });

    it("adds the metastore's schemaName, keeps a given dataPath (normalised) and accepts the full name", async () => {
      const database = await create(`${p}_full`, { dataPath: "s3://bucket/lake/full", metastore: { schemaName: "raw" }, defaultSchema: "mart" });
      assert.equal(database?.name, `${p}_full`);
      assert.equal(database?.suffix, "full");
      assert.equal(database?.dataPath, "s3://bucket/lake/full");
      assert.equal(database?.effectiveDataPath, "s3://bucket/lake/full/");
      assert.deepEqual(database?.metastore, { dbName: `${p}_full`, schemaName: "raw" });
      await assertCatalog(postgres().target, `${p}_full`, { schemas: ["main", "raw", "mart"], dataPath: "s3://bucket/lake/full/" });
    });

    it("answers ALREADY_EXISTS for a duplicate name", async () => {
      await create("dup");
      await expectError(create("dup"), status.ALREADY_EXISTS, "exists");
      await expectError(create(`${p}_dup`, { kind: "memory" }), status.ALREADY_EXISTS, "exists");
    });

    it("keeps full names unique across tenants: a_b + c and a + b_c cannot both exist", async () => {
      await app.clients.tenants.createTenant({ name: `${p}_a_b` });
      await app.clients.tenants.createTenant({ name: `${p}_a` });
      await app.clients.databases.createDatabase({ tenant: `${p}_a_b`, name: "c" });
      await expectError(app.clients.databases.createDatabase({ tenant: `${p}_a`, name: "b_c" }), status.ALREADY_EXISTS, "exists");
      assert.equal((await app.clients.databases.listDatabases({ tenant: `${p}_a` })).tenantDbs.length, 0);
      assert.deepEqual((await databasesOnServer()).filter((n) => n.startsWith(`${p}_a_`)), [`${p}_a_b_c`]);
    });

    it("answers NOT_FOUND for an unknown tenant, with nothing created", async () => {
      await expectError(app.clients.databases.createDatabase({ tenant: `${p}_nobody`, name: "x" }), status.NOT_FOUND, "not_found");
      assert.deepEqual((await databasesOnServer()).filter((n) => n.startsWith(`${p}_nobody`)), []);
    });

    it("refuses to adopt or drop a Postgres database it did not make, and a FAILED row does not block a retry", async () => {
      const name = `${p}_foreign`;
      await postgres().admin.query(sql.typeAlias("void")`CREATE DATABASE ${sql.identifier([name])}`);
      const err = await expectError(create("foreign"), status.ALREADY_EXISTS, "exists");
      assert.match(err.message, /already exists on its server/);
      assert.deepEqual(await stateOf(name), { status: "FAILED", status_reason: "exists", status_message: err.message });
      const database = await app.clients.databases.getDatabase({ tenant, name: "foreign" });
      assert.equal(database?.status, DatabaseStatus.FAILED);
      assert.ok((await databasesOnServer()).includes(name), "the foreign database is untouched");
      // once the name is free on the server, a new create replaces the FAILED row
      await postgres().admin.query(sql.typeAlias("void")`DROP DATABASE ${sql.identifier([name])}`);
      const retried = await create("foreign");
      assert.equal(retried.status, DatabaseStatus.READY);
      assert.notEqual(retried.id, database?.id);
    });

    it("answers UNAVAILABLE when the metastore's server cannot be reached, and records the row FAILED", async () => {
      const port = await freePort();
      const err = await expectError(
        create("unreachable", { metastore: { pgHost: "127.0.0.1", pgPort: String(port), pgPassword: "s3cr3t-pw" } }),
        status.UNAVAILABLE,
        "unavailable",
      );
      assert.doesNotMatch(err.message, /s3cr3t|SELECT|CREATE|postgres:\/\//);
      const database = await app.clients.databases.getDatabase({ tenant, name: "unreachable" });
      assert.equal(database?.status, DatabaseStatus.FAILED);
      assert.equal(database?.statusMessage, err.message);
      assert.equal(database?.metastore.pgPassword, undefined);
      // a FAILED row never blocks: the same name on a reachable server succeeds
      const retried = await create("unreachable");
      assert.equal(retried?.status, DatabaseStatus.READY);
    });
  });

  describe("name rules (SPEC §6): rejected with a field violation, no row and no database", () => {
    const bad: [string, () => string][] = [
      ["empty", () => ""],
      ["leading digit", () => "1sales"],
      ["hyphen", () => "sa-les"],
      ["space", () => "sa les"],
      ["SQL metacharacters", () => `x"; DROP DATABASE postgres; --`],
      ["single quote", () => "sa'les"],
      ["non-ASCII", () => "salés"],
      ["the tenant's own name", () => tenant],
      ["a full name of 64 bytes", () => "x".repeat(64 - p.length - 1)],
    ];
    for (const [label, name] of bad) {
      it(`rejects ${label}`, async () => {
        const before = await rowCount();
        const servers = await databasesOnServer();
        const err = await expectError(create(name()), status.INVALID_ARGUMENT, "invalid_name");
        assert.equal(err.violations[0]?.field, "name");
        assert.equal(await rowCount(), before);
        assert.deepEqual(await databasesOnServer(), servers);
      });
    }

    it("accepts a full name of exactly 63 bytes", async () => {
      const suffix = "y".repeat(63 - p.length - 1);
      const database = await create(suffix, { kind: "memory" });
      assert.equal(Buffer.byteLength(database?.name ?? ""), 63);
    });

    it("rejects a bad tenant name as invalid_id", async () => {
      await expectError(app.clients.databases.createDatabase({ tenant: "Bad-Tenant", name: "x" }), status.INVALID_ARGUMENT, "invalid_id");
    });
  });

  describe("field rules: each rejected with its reason and field, nothing stored", () => {
    const cases: [string, Record<string, unknown>, string, string][] = [
      ["an unknown kind", { kind: "oracle" }, "invalid_kind", "kind"],
      ["a metastore on a memory database", { kind: "memory", metastore: { schemaName: "x" } }, "invalid_metastore", "metastore.schemaName"],
      ["a dataPath on a memory database", { kind: "memory", dataPath: "/data/x" }, "invalid_data_path", "data_path"],
      ["an objectStore on a memory database", { kind: "memory", objectStore: { s3_region: "x" } }, "invalid_object_store", "object_store.s3_region"],
      ["a duckdb-file without a dataPath", { kind: "duckdb-file" }, "invalid_data_path", "data_path"],
      ["a duckdb-file path not ending in .duckdb", { kind: "duckdb-file", dataPath: "/data/x.db" }, "invalid_data_path", "data_path"],
      ["a metastore on a duckdb-file database", { kind: "duckdb-file", dataPath: "/d/x.duckdb", metastore: { pgHost: "h" } }, "invalid_metastore", "metastore.pgHost"],
      ["a relative dataPath", { dataPath: "data/lake" }, "invalid_data_path", "data_path"],
      ["an http:// dataPath", { dataPath: "http://example.com/lake" }, "invalid_data_path", "data_path"],
      ["a dataPath URI without a bucket", { dataPath: "s3:///lake" }, "invalid_data_path", "data_path"],
      ["a dataPath with a quote", { dataPath: "/data/it's" }, "invalid_data_path", "data_path"],
      ["a dataPath with a semicolon", { dataPath: "/data/a;b" }, "invalid_data_path", "data_path"],
      ["a dataPath with a backslash", { dataPath: "/data/a\\b" }, "invalid_data_path", "data_path"],
      ["a dataPath with a newline", { dataPath: "/data/a\nb" }, "invalid_data_path", "data_path"],
      ["an unknown metastore key", { metastore: { pgSsl: "on" } }, "invalid_metastore", "metastore.pgSsl"],
      ["pgPort 0", { metastore: { pgPort: "0" } }, "invalid_metastore", "metastore.pgPort"],
      ["pgPort 65536", { metastore: { pgPort: "65536" } }, "invalid_metastore", "metastore.pgPort"],
      ["a non-numeric pgPort", { metastore: { pgPort: "54x" } }, "invalid_metastore", "metastore.pgPort"],
      ["a pgHost with a slash", { metastore: { pgHost: "evil/host" } }, "invalid_metastore", "metastore.pgHost"],
      ["a pgUser with a quote", { metastore: { pgUser: "a'b" } }, "invalid_metastore", "metastore.pgUser"],
      ["a pgPassword with a semicolon", { metastore: { pgPassword: "a;b" } }, "invalid_metastore", "metastore.pgPassword"],
      ["a dbName other than the full name", { metastore: { dbName: "postgres" } }, "invalid_metastore", "metastore.dbName"],
      ["a schemaName that is no identifier", { metastore: { schemaName: "a-b" } }, "invalid_metastore", "metastore.schemaName"],
      ["an unknown objectStore key", { objectStore: { password_file: "/x" } }, "invalid_object_store", "object_store.password_file"],
      ["an objectStore value with a semicolon", { objectStore: { s3_region: "eu;DROP" } }, "invalid_object_store", "object_store.s3_region"],
      ["a defaultSchema that is no identifier", { defaultSchema: "1mart" }, "invalid_default_schema", "default_schema"],
      ["a defaultDatabase that is no identifier", { defaultDatabase: "a b" }, "invalid_default_database", "default_database"],
      ["a malformed requestId", { requestId: "has space" }, "invalid_request_id", "request_id"],
    ];
    cases.forEach(([label, extra, reason, field], i) => {
      it(`rejects ${label}`, async () => {
        const before = await rowCount();
        const err = await expectError(create(`bad${i}`, extra), status.INVALID_ARGUMENT, reason);
        assert.ok(err.violations.some((v) => v.field === field), `violations: ${JSON.stringify(err.violations)}`);
        assert.equal(await rowCount(), before);
        assert.deepEqual((await databasesOnServer()).filter((n) => n === `${p}_bad${i}`), []);
      });
    });

    it("rejects a defaultSchema equal to the database name", async () => {
      await expectError(create("same", { defaultSchema: `${p}_same` }), status.INVALID_ARGUMENT, "invalid_default_schema");
    });

    it("accepts every object-store URI form for a duckdb-file", async () => {
      const forms = ["s3", "s3a", "r2", "gs", "az", "azure", "abfss"].map((s) => `${s}://bucket/dir/x.duckdb`);
      for (const [i, dataPath] of [...forms, "/srv/files/x.duckdb"].entries()) {
        const database = await create(`form${i}`, { kind: "duckdb-file", dataPath });
        assert.equal(database?.effectiveDataPath, dataPath);
      }
    });
  });

  describe("kinds without a catalog", () => {
    it("records a duckdb-file database READY with its file path and makes no Postgres database", async () => {
      const database = await create("file", { kind: "duckdb-file", dataPath: "/srv/files/acme.duckdb" });
      assert.equal(database?.kind, "duckdb-file");
      assert.equal(database?.status, DatabaseStatus.READY);
      assert.equal(database?.dataPath, "/srv/files/acme.duckdb");
      assert.equal(database?.effectiveDataPath, "/srv/files/acme.duckdb");
      assert.deepEqual(database?.metastore, {});
      assert.ok(!(await databasesOnServer()).includes(`${p}_file`));
    });

    it("records a memory database READY with no data path and no Postgres database", async () => {
      const database = await create("mem", { kind: "memory" });
      assert.equal(database?.kind, "memory");
      assert.equal(database?.status, DatabaseStatus.READY);
      assert.equal(database?.effectiveDataPath, "");
      assert.deepEqual(database?.metastore, {});
      assert.ok(!(await databasesOnServer()).includes(`${p}_mem`));
    });
  });

  describe("GetDatabase and ListDatabases", () => {
    it("gets by suffix or full name, and answers NOT_FOUND for a missing one", async () => {
      await create("getme", { kind: "memory" });
      const bySuffix = await app.clients.databases.getDatabase({ tenant, name: "getme" });
      const byFull = await app.clients.databases.getDatabase({ tenant, name: `${p}_getme` });
      assert.deepEqual(bySuffix, byFull);
      await expectError(app.clients.databases.getDatabase({ tenant, name: "missing" }), status.NOT_FOUND, "not_found");
    });

    it("lists a tenant's databases ordered by name, in pages that chain to the end", async () => {
      const t = `${p}_lst`;
      await app.clients.tenants.createTenant({ name: t });
      const names = ["e", "a", "d", "c", "b"];
      for (const name of names) await app.clients.databases.createDatabase({ tenant: t, name, kind: "memory" });
      const seen: Database[] = [];
      let pageToken = "";
      do {
        const page = await app.clients.databases.listDatabases({ tenant: t, pageSize: 2, pageToken });
        assert.ok(page.tenantDbs.length <= 2);
        seen.push(...page.tenantDbs);
        pageToken = page.nextPageToken;
      } while (pageToken);
      assert.deepEqual(seen.map((d) => d.suffix), ["a", "b", "c", "d", "e"]);
      await expectError(app.clients.databases.listDatabases({ tenant: t, pageToken: "forged" }), status.INVALID_ARGUMENT, "invalid_page_token");
      // a token of another tenant's list is refused too
      const other = await app.clients.databases.listDatabases({ tenant, pageSize: 1 });
      await expectError(app.clients.databases.listDatabases({ tenant: t, pageToken: other.nextPageToken }), status.INVALID_ARGUMENT, "invalid_page_token");
    });

    it("lists nothing for an unknown tenant", async () => {
      assert.deepEqual((await app.clients.databases.listDatabases({ tenant: `${p}_ghost` })).tenantDbs, []);
    });
  });

  describe("secrets", () => {
    const vault = createVault(TEST_VAULT_KEY);
    const Raw = z.object({ id: z.string(), metastore: z.string(), object_store: z.string(), secrets: z.instanceof(Buffer).nullable() });
    const raw = (name: string) =>
      app.pool.one(sql.type(Raw)`SELECT id, metastore::text, object_store::text, secrets FROM databases WHERE name = ${name}`);
    const password = () => postgres().target.password ?? "";

    it("stores pgPassword and object-store secrets as AES-256-GCM ciphertext and never returns them", async () => {
      const objectStore = { s3_access_key_id: "AKIAEXAMPLE", s3_secret_access_key: "aws-secret-value", SECRET: "generic-secret", s3_region: "eu-west-1" };
      const database = await create("vault", { metastore: { pgPassword: password() }, objectStore, dataPath: "s3://bucket/vault" });
      assert.equal(database?.status, DatabaseStatus.READY);
      assert.deepEqual(database?.metastore, { dbName: `${p}_vault` });
      assert.deepEqual(database?.objectStore, { s3_access_key_id: "AKIAEXAMPLE", s3_region: "eu-west-1" });

      const row = await raw(`${p}_vault`);
      const everything = `${row.metastore}${row.object_store}${row.secrets?.toString("latin1")}`;
      for (const secret of [password(), "aws-secret-value", "generic-secret"]) assert.ok(!everything.includes(secret), "no secret in clear in the row");
      assert.ok(row.secrets && row.secrets.length > 1 + 12 + 16);
      assert.deepEqual(openSecrets(vault, row.id, row.secrets), {
        metastore: { pgPassword: password() },
        objectStore: { s3_secret_access_key: "aws-secret-value", secret: "generic-secret" },
      });
      // sealed for this row only: another id does not open it
      assert.throws(() => openSecrets(vault, "td-other", row.secrets));

      for (const response of [await app.clients.databases.getDatabase({ tenant, name: "vault" }), await app.clients.databases.listDatabases({ tenant })]) {
        const text = JSON.stringify(response);
        for (const secret of [password(), "aws-secret-value", "generic-secret"]) assert.ok(!text.includes(secret));
      }
      const audit = await app.pool.anyFirst(sql.type(z.object({ details: z.string() }))`SELECT details::text FROM audit_log`);
      assert.ok(!audit.join().includes("aws-secret-value"));
    });

    it("update merges entries: an omitted secret is kept, an empty one removed, a new one sealed afresh", async () => {
      await create("merge", { kind: "duckdb-file", dataPath: "s3://b/m.duckdb", objectStore: { s3_secret_access_key: "first", s3_region: "eu" } });
      const before = await raw(`${p}_merge`);
      const database = await app.clients.databases.updateDatabase({ tenant, name: "merge", objectStore: { s3_endpoint: "minio:9000", s3_region: "" } });
      assert.deepEqual(database?.objectStore, { s3_endpoint: "minio:9000" });
      const kept = await raw(`${p}_merge`);
      assert.deepEqual(openSecrets(vault, kept.id, kept.secrets).objectStore, { s3_secret_access_key: "first" });
      assert.ok(!before.secrets?.equals(kept.secrets ?? Buffer.alloc(0)), "a fresh IV on every write");

      await app.clients.databases.updateDatabase({ tenant, name: "merge", objectStore: { S3_SECRET_ACCESS_KEY: "second" } });
      const replaced = await raw(`${p}_merge`);
      assert.deepEqual(openSecrets(vault, replaced.id, replaced.secrets).objectStore, { s3_secret_access_key: "second" });

      await app.clients.databases.updateDatabase({ tenant, name: "merge", objectStore: { s3_secret_access_key: "" } });
      assert.equal((await raw(`${p}_merge`)).secrets, null);
    });
  });

  describe("UpdateDatabase", () => {
    it("changes the default schema and database, merges the metastore, and audits key names only", async () => {
      await create("upd", { defaultSchema: "mart", metastore: { pgUser: postgres().target.user } });
      const database = await app.clients.databases.updateDatabase({
        tenant,
        name: `${p}_upd`,
        defaultDatabase: `${p}_upd`,
        metastore: { schemaName: "raw", pgUser: "" },
      });
      assert.equal(database?.defaultDatabase, `${p}_upd`);
      assert.equal(database?.defaultSchema, "mart");
      assert.deepEqual(database?.metastore, { dbName: `${p}_upd`, schemaName: "raw" });
      const cleared = await app.clients.databases.updateDatabase({ tenant, name: "upd", defaultSchema: "" });
      assert.equal(cleared.defaultSchema, "");
      assert.equal(cleared.defaultDatabase, `${p}_upd`);
      const audit = await app.pool.any(sql.type(z.object({ action: z.string(), details: z.record(z.unknown()) }))`
        SELECT action, details FROM audit_log WHERE target = ${`${p}_upd`} ORDER BY id`);
      assert.deepEqual(audit.map((a) => a.action), ["database.create", "database.update", "database.update"]);
      assert.deepEqual(audit[1]?.details.metastore, ["schemaName", "pgUser"]);
    });

    it("adds a schema it names to the DuckLake catalog, once, as a commit of its own", async () => {
      const database = await create("sch", { defaultSchema: "mart" });
      const full = `${p}_sch`;
      const catalog = (schemas: string[]) => assertCatalog(postgres().target, full, { schemas, dataPath: database.effectiveDataPath });
      await catalog(["main", "mart"]);
      await app.clients.databases.updateDatabase({ tenant, name: "sch", defaultSchema: "reports" });
      await catalog(["main", "mart", "reports"]);
      await app.clients.databases.updateDatabase({ tenant, name: "sch", metastore: { schemaName: "raw" } });
      await catalog(["main", "mart", "reports", "raw"]);
      for (const defaultSchema of ["mart", "", "reports"]) await app.clients.databases.updateDatabase({ tenant, name: "sch", defaultSchema });
      await catalog(["main", "mart", "reports", "raw"]);
      // Each schema is its own snapshot, taking the next catalog id, as DuckDB's CREATE SCHEMA commits it.
      const db = await createPool(pgUrl(postgres().target, full), quietLogger, { maximumPoolSize: 1 });
      try {
        const rows = await db.any(sql.type(z.object({ schema_id: z.coerce.number(), begin_snapshot: z.coerce.number(), schema_name: z.string() }))`
          SELECT schema_id, begin_snapshot, schema_name FROM ducklake_schema ORDER BY schema_id`);
        assert.deepEqual(rows, [
          { schema_id: 0, begin_snapshot: 0, schema_name: "main" },
          { schema_id: 1, begin_snapshot: 1, schema_name: "mart" },
          { schema_id: 2, begin_snapshot: 2, schema_name: "reports" },
          { schema_id: 3, begin_snapshot: 3, schema_name: "raw" },
        ]);
        const latest = await db.one(sql.type(z.object({ snapshot_id: z.coerce.number(), schema_version: z.coerce.number(), next_catalog_id: z.coerce.number() }))`
          SELECT snapshot_id, schema_version, next_catalog_id FROM ducklake_snapshot ORDER BY snapshot_id DESC LIMIT 1`);
        assert.deepEqual(latest, { snapshot_id: 3, schema_version: 3, next_catalog_id: 4 });
      } finally {
        await db.end();
      }
    });

    it("refuses to move a provisioned database to another server, and bad entries", async () => {
      await create("pin", { kind: "memory" });
      await create("pinned");
      await expectError(app.clients.databases.updateDatabase({ tenant, name: "pinned", metastore: { pgHost: "elsewhere" } }), status.INVALID_ARGUMENT, "invalid_metastore");
      await expectError(app.clients.databases.updateDatabase({ tenant, name: "pinned", metastore: { pgPort: "1" } }), status.INVALID_ARGUMENT, "invalid_metastore");
      await expectError(app.clients.databases.updateDatabase({ tenant, name: "pinned", metastore: { dbName: "other" } }), status.INVALID_ARGUMENT, "invalid_metastore");
      await expectError(app.clients.databases.updateDatabase({ tenant, name: "pinned", objectStore: { s3_region: "a'b" } }), status.INVALID_ARGUMENT, "invalid_object_store");
      await expectError(app.clients.databases.updateDatabase({ tenant, name: "pinned", defaultSchema: `${p}_pinned` }), status.INVALID_ARGUMENT, "invalid_default_schema");
      await expectError(app.clients.databases.updateDatabase({ tenant, name: "pin", metastore: { schemaName: "x" } }), status.INVALID_ARGUMENT, "invalid_metastore");
      await expectError(app.clients.databases.updateDatabase({ tenant, name: "nope", defaultSchema: "x" }), status.NOT_FOUND, "not_found");
      const database = await app.clients.databases.getDatabase({ tenant, name: "pinned" });
      assert.deepEqual(database?.metastore, { dbName: `${p}_pinned` });
    });
  });

  describe("DeleteDatabase", () => {
    it("removes the row and keeps the Postgres database and its catalog; the name then stays taken on the server", async () => {
      const database = await create("keep");
      assert.deepEqual(await app.clients.databases.deleteDatabase({ tenant, name: "keep" }), {});
      await expectError(app.clients.databases.getDatabase({ tenant, name: "keep" }), status.NOT_FOUND, "not_found");
      assert.ok((await databasesOnServer()).includes(`${p}_keep`));
      await assertCatalog(postgres().target, `${p}_keep`, { schemas: ["main"], dataPath: database?.effectiveDataPath ?? "" });
      // a create of the same name meets the kept database: FAILED, and the kept database untouched
      await expectError(create("keep"), status.ALREADY_EXISTS, "exists");
      await assertCatalog(postgres().target, `${p}_keep`, { schemas: ["main"], dataPath: database?.effectiveDataPath ?? "" });
      await app.clients.databases.deleteDatabase({ tenant, name: "keep" });
      await expectError(app.clients.databases.deleteDatabase({ tenant, name: "keep" }), status.NOT_FOUND, "not_found");
    });

    it("drops the Postgres database with dropDatabase, by full name", async () => {
      await create("drop");
      assert.ok((await databasesOnServer()).includes(`${p}_drop`));
      await app.clients.databases.deleteDatabase({ tenant, name: `${p}_drop`, dropDatabase: true });
      assert.ok(!(await databasesOnServer()).includes(`${p}_drop`));
      assert.equal(await stateOf(`${p}_drop`), null);
      // and the name can be used again
      assert.equal((await create("drop")).status, DatabaseStatus.READY);
    });

    it("answers ABORTED has_pools while a pool uses the database, with or without dropDatabase", async () => {
      await create("pooled");
      await app.clients.pools.createPool({ tenant, tenantDb: "pooled", pool: `${p}_bi`, size: 2 });
      await expectError(app.clients.databases.deleteDatabase({ tenant, name: "pooled" }), status.ABORTED, "has_pools");
      await expectError(app.clients.databases.deleteDatabase({ tenant, name: "pooled", dropDatabase: true }), status.ABORTED, "has_pools");
      assert.equal((await stateOf(`${p}_pooled`))?.status, "READY");
      assert.ok((await databasesOnServer()).includes(`${p}_pooled`));
      await app.clients.pools.deletePool({ tenant, pool: `${p}_bi` });
      await app.clients.databases.deleteDatabase({ tenant, name: "pooled", dropDatabase: true });
      assert.ok(!(await databasesOnServer()).includes(`${p}_pooled`));
    });

    it("never drops a database behind a FAILED row (it was not ours)", async () => {
      const name = `${p}_notours`;
      await postgres().admin.query(sql.typeAlias("void")`CREATE DATABASE ${sql.identifier([name])}`);
      await expectError(create("notours"), status.ALREADY_EXISTS, "exists");
      await app.clients.databases.deleteDatabase({ tenant, name: "notours", dropDatabase: true });
      assert.ok((await databasesOnServer()).includes(name));
      assert.equal(await stateOf(name), null);
    });

    it("deletes kinds without a Postgres database, dropDatabase or not", async () => {
      await create("memdel", { kind: "memory" });
      await create("filedel", { kind: "duckdb-file", dataPath: "/x/y.duckdb" });
      await app.clients.databases.deleteDatabase({ tenant, name: "memdel", dropDatabase: true });
      await app.clients.databases.deleteDatabase({ tenant, name: "filedel" });
      assert.equal(await stateOf(`${p}_memdel`), null);
      assert.equal(await stateOf(`${p}_filedel`), null);
    });

    it("a tenant delete removes its database rows and keeps their Postgres databases", async () => {
      const t = `${p}_gone`;
      await app.clients.tenants.createTenant({ name: t });
      await app.clients.databases.createDatabase({ tenant: t, name: "kept" });
      await app.clients.tenants.deleteTenant({ name: t });
      assert.equal(await stateOf(`${t}_kept`), null);
      assert.ok((await databasesOnServer()).includes(`${t}_kept`));
    });
  });

  describe("concurrency", () => {
    it("20 concurrent creates of distinct names all succeed, each with a whole catalog", async () => {
      const names = Array.from({ length: 20 }, (_, i) => `par${i}`);
      const results = await Promise.all(names.map((name) => create(name, { defaultSchema: "mart" })));
      assert.ok(results.every((r) => r.status === DatabaseStatus.READY));
      for (const name of names) await assertCatalog(postgres().target, `${p}_${name}`, { schemas: ["main", "mart"], dataPath: `${app.config.dataPath}/${p}/${name}/` });
    });

    it("10 concurrent creates of one name give exactly one success and ALREADY_EXISTS for the rest", async () => {
      const results = await Promise.allSettled(Array.from({ length: 10 }, () => create("race")));
      assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
      for (const r of results.filter((r): r is PromiseRejectedResult => r.status === "rejected")) {
        await expectError(Promise.reject(r.reason), status.ALREADY_EXISTS, "exists");
      }
      assert.equal((await databasesOnServer()).filter((n) => n === `${p}_race`).length, 1);
    });

    it("concurrent and later repeats with one requestId all return the first database", async () => {
      const requestId = `${p}-req-1`;
      const results = await Promise.all(Array.from({ length: 8 }, () => create("idem", { requestId })));
      const ids = new Set(results.map((r) => r.id));
      assert.equal(ids.size, 1);
      assert.ok(results.every((r) => r.status === DatabaseStatus.READY));
      const again = await create("idem", { requestId });
      assert.equal(again.id, results[0]?.id);
      // without the requestId it is a duplicate
      await expectError(create("idem"), status.ALREADY_EXISTS, "exists");
      // the same requestId for another database is refused
      await expectError(create("idem2", { requestId }), status.INVALID_ARGUMENT, "invalid_request_id");
    });

    it("takes the request id from the idempotency-key header (as the REST gateway forwards it)", async () => {
      const headers = { "idempotency-key": `${p}-hdr-1` };
      const results = await Promise.all(Array.from({ length: 4 }, () => app.clients.databases.createDatabase({ tenant, name: "hdr" }, { apiKey: TEST_API_KEY, headers })));
      assert.equal(new Set(results.map((r) => r.id)).size, 1);
      await expectError(
        app.clients.databases.createDatabase({ tenant, name: "hdr", requestId: "other" }, { apiKey: TEST_API_KEY, headers }),
        status.INVALID_ARGUMENT,
        "invalid_request_id",
      );
    });

    it("a repeat of a failed request makes a new attempt", async () => {
      const requestId = `${p}-req-fail`;
      const port = await freePort();
      await expectError(create("again", { requestId, metastore: { pgHost: "127.0.0.1", pgPort: String(port) } }), status.UNAVAILABLE, "unavailable");
      await expectError(create("again", { requestId, metastore: { pgHost: "127.0.0.1", pgPort: String(port) } }), status.UNAVAILABLE, "unavailable");
      assert.equal((await create("again", { requestId })).status, DatabaseStatus.READY);
    });
  });

  describe("authorization comes first (handlers called with a tenant principal)", () => {
    let servers: Servers;
    let handlers: ReturnType<typeof databaseHandlers>;
    const ctxAs = (principal: Principal): AuthedContext => ({
      method: "/qod.v1.DatabaseService/Test",
      surface: "grpc",
      metadata: new Metadata(),
      peer: "test",
      signal: new AbortController().signal,
      abortReason: undefined,
      deadline: undefined,
      requestId: "test",
      log: quietLogger,
      principal,
    });
    const adminOf = (t: string) => ctxAs({ credential: "session", subject: "ann", tenant: t, role: "admin", superuser: false });
    const userOf = (t: string) => ctxAs({ credential: "session", subject: "bob", tenant: t, role: "user", superuser: false });
    const rejectsWith = (promise: Promise<unknown>, reason: string) =>
      assert.rejects(promise, (err: unknown) => err instanceof AppError && err.reason === reason);

    before(() => {
      servers = createServers(quietLogger);
      const lifecycle = createLifecycle({ lockPool: app.state.lockPool, lockSlots: app.state.lockSlots, servers, vault: createVault(TEST_VAULT_KEY), defaults: postgres().target, logger: quietLogger, metrics: createMetrics() });
      handlers = databaseHandlers({ pool: app.pool, lifecycle, defaults: postgres().target, config: app.config });
    });
    after(() => servers.end());

    it("answers another tenant's admin tenant_forbidden before validation or lookups, whether the tenant exists or not", async () => {
      for (const target of [tenant, `${p}_ghost`]) {
        const ctx = adminOf(`${p}_other`);
        await rejectsWith(handlers.createDatabase({ tenant: target, name: "", kind: "bogus", dataPath: "", metastore: {}, objectStore: {}, defaultDatabase: "", defaultSchema: "", requestId: "" }, ctx), "tenant_forbidden");
        await rejectsWith(handlers.listDatabases({ tenant: target, pageSize: -1, pageToken: "" }, ctx), "tenant_forbidden");
        await rejectsWith(handlers.getDatabase({ tenant: target, name: "" }, ctx), "tenant_forbidden");
        await rejectsWith(handlers.updateDatabase({ tenant: target, name: "x", metastore: { bogus: "1" }, objectStore: {} }, ctx), "tenant_forbidden");
        await rejectsWith(handlers.deleteDatabase({ tenant: target, name: "x", dropDatabase: true }, ctx), "tenant_forbidden");
      }
    });

    it("answers a tenant's non-admin user admin_required, GetMetastoreDefaults included", async () => {
      await rejectsWith(handlers.getDatabase({ tenant, name: "x" }, userOf(tenant)), "admin_required");
      await rejectsWith(handlers.getMetastoreDefaults({}, userOf(tenant)), "admin_required");
    });

    it("lets a tenant's admin work on its own tenant", async () => {
      await handlers.createDatabase(
        { tenant, name: "own", kind: "memory", dataPath: "", metastore: {}, objectStore: {}, defaultDatabase: "", defaultSchema: "", requestId: "" },
        adminOf(tenant),
      );
      const { tenantDbs } = await handlers.listDatabases({ tenant, pageSize: 0, pageToken: "" }, adminOf(tenant));
      assert.ok(tenantDbs.some((d) => d.name === `${p}_own`));
      assert.equal((await handlers.getMetastoreDefaults({}, adminOf(tenant))).schemaName, "main");
    });
  });

  it("never writes a secret to the log, even at trace level and when provisioning fails", async () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk: Buffer, _encoding, done) => (lines.push(chunk.toString()), done()) });
    const logged = await startTestApp({ logger: createLogger("trace", sink) });
    try {
      const t = `${p}_log`;
      const secrets = [postgres().target.password ?? "", "log-secret-aws", "log-secret-unreachable", "log-secret-update"];
      await logged.clients.tenants.createTenant({ name: t });
      await logged.clients.databases.createDatabase({ tenant: t, name: "a", metastore: { pgPassword: secrets[0] }, objectStore: { s3_secret_access_key: secrets[1] } });
      await expectError(
        logged.clients.databases.createDatabase({ tenant: t, name: "b", metastore: { pgHost: "127.0.0.1", pgPort: String(await freePort()), pgPassword: secrets[2] } }),
        status.UNAVAILABLE,
        "unavailable",
      );
      await logged.clients.databases.updateDatabase({ tenant: t, name: "a", objectStore: { s3_secret_access_key: secrets[3] } });
      await logged.clients.databases.deleteDatabase({ tenant: t, name: "a", dropDatabase: true });
      assert.ok(lines.length > 0, "something was logged");
      const text = lines.join("");
      for (const secret of secrets) assert.ok(!text.includes(secret), "a secret reached the log");
    } finally {
      await logged.stop();
    }
  });

  it("derives data paths under an object-store QOD_DATA_PATH", async () => {
    const s3 = await startTestApp({ env: { QOD_DATA_PATH: "s3://bucket/root/" } });
    try {
      const t = `${p}_s3`;
      await s3.clients.tenants.createTenant({ name: t });
      const database = await s3.clients.databases.createDatabase({ tenant: t, name: "lake" });
      assert.equal(database?.effectiveDataPath, `s3://bucket/root/${t}/lake/`);
      await assertCatalog(postgres().target, `${t}_lake`, { schemas: ["main"], dataPath: `s3://bucket/root/${t}/lake/` });
      assert.equal((await s3.clients.databases.getMetastoreDefaults({})).dataPath, "s3://bucket/root");
    } finally {
      await s3.stop();
    }
  });

  it("GetMetastoreDefaults shows the shared server and data root, never a password", async () => {
    const defaults = await app.clients.databases.getMetastoreDefaults({});
    assert.deepEqual(defaults, {
      pgHost: postgres().target.host,
      pgPort: String(postgres().target.port),
      pgUser: postgres().target.user,
      schemaName: "main",
      dataPath: app.config.dataPath,
    });
  });

  it("answers UNAUTHENTICATED without a credential", async () => {
    await expectError(app.clients.databases.listDatabases({ tenant }, {}), status.UNAUTHENTICATED, "unauthenticated");
    await expectError(app.clients.databases.createDatabase({ tenant, name: "anon" }, {}), status.UNAUTHENTICATED, "unauthenticated");
  });
});
