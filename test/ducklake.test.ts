// The DuckLake v1.0 catalog initialiser against a real Postgres.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import type { DatabasePool } from "slonik";
import { z } from "zod";
import {
  type CatalogOptions,
  DUCKLAKE_SPEC_VERSION,
  catalogStatements,
  extraSchemas,
  initializeCatalog,
  normalizeDataPath,
  quoteName,
  verifyCatalog,
} from "../src/databases/ducklake";
import { createPool, pgUrl } from "../src/db/pool";
import { sql } from "../src/db/sql";
import { quietLogger, sharedPostgres, startPostgres, type TestPostgres } from "./helpers/postgres";

const fixture = JSON.parse(readFileSync(path.join(__dirname, "fixtures", "ducklake-v1.0.json"), "utf8")) as {
  source: string;
  tables: Record<string, string[]>;
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const void_ = sql.typeAlias("void");

const options: CatalogOptions = { dataPath: "/srv/lake/tenant-a//", encrypted: false, createdBy: "qod-test", schemas: ["mart"] };

describe("DuckLake v1.0 catalog", function () {
  let pg: TestPostgres;
  let ownServer = false;
  const pools: DatabasePool[] = [];
  let dbCount = 0;

  /** A pool on a new, empty database (not the migrated template: a lake catalog has only its own tables). */
  async function freshDatabase(): Promise<DatabasePool> {
    const name = `ducklake_test_${process.pid}_${++dbCount}`;
    await pg.admin.query(void_`CREATE DATABASE ${sql.identifier([name])}`);
    const pool = await createPool(pgUrl(pg.target, name), quietLogger, { maximumPoolSize: 2 });
    pools.push(pool);
    return pool;
  }

  before(async function () {
    this.timeout(120_000);
    try {
      pg = sharedPostgres(); // running under the repo's .mocharc (test/hooks.ts)
    } catch {
      pg = await startPostgres(); // run alone (--no-config): a server of our own
      ownServer = true;
    }
  });

  after(async function () {
    this.timeout(60_000);
    for (const pool of pools) await pool.end();
    for (let i = 1; i <= dbCount; i++) {
      await pg.admin.query(void_`DROP DATABASE IF EXISTS ${sql.identifier([`ducklake_test_${process.pid}_${i}`])}`);
    }
    if (ownServer) await pg.stop();
  });

  async function columnsByTable(db: DatabasePool): Promise<Record<string, string[]>> {
    const rows = await db.any(sql.type(z.object({ table_name: z.string(), column_name: z.string() }))`
      SELECT table_name::text, column_name::text FROM information_schema.columns
      WHERE table_schema = 'public' ORDER BY table_name, ordinal_position`);
    const out: Record<string, string[]> = {};
    for (const r of rows) (out[r.table_name] ??= []).push(r.column_name);
    return out;
  }

  /** Everything about a catalog except its uuids and times. */
  async function shape(db: DatabasePool) {
    const types = await db.any(sql.type(z.object({ t: z.string(), c: z.string(), type: z.string(), nullable: z.string() }))`
      SELECT table_name::text AS t, column_name::text AS c, data_type::text AS type, is_nullable::text AS nullable
      FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position`);
    const primaryKeys = await db.any(sql.type(z.object({ t: z.string(), c: z.string() }))`
      SELECT tc.table_name::text AS t, kcu.column_name::text AS c
      FROM information_schema.table_constraints tc
      JOIN information_schema.key_column_usage kcu USING (constraint_schema, constraint_name)
      WHERE tc.table_schema = 'public' AND tc.constraint_type = 'PRIMARY KEY' ORDER BY 1, 2`);
    const metadata = await db.any(sql.type(z.object({ key: z.string(), value: z.string(), scope: z.string().nullable(), scope_id: z.bigint().nullable() }))`
      SELECT key, value, scope, scope_id FROM ducklake_metadata ORDER BY key`);
    const snapshots = await db.any(sql.type(z.object({ snapshot_id: z.bigint(), schema_version: z.bigint(), next_catalog_id: z.bigint(), next_file_id: z.bigint() }))`
      SELECT snapshot_id, schema_version, next_catalog_id, next_file_id FROM ducklake_snapshot ORDER BY snapshot_id`);
    const changes = await db.any(sql.type(z.object({ snapshot_id: z.bigint(), changes_made: z.string(), author: z.null(), commit_message: z.null(), commit_extra_info: z.null() }))`
      SELECT * FROM ducklake_snapshot_changes ORDER BY snapshot_id`);
    const schemas = await db.any(sql.type(z.object({ schema_id: z.bigint(), begin_snapshot: z.bigint(), end_snapshot: z.bigint().nullable(), schema_name: z.string(), path: z.string(), path_is_relative: z.boolean() }))`
      SELECT schema_id, begin_snapshot, end_snapshot, schema_name, path, path_is_relative FROM ducklake_schema ORDER BY schema_id`);
    const otherRows = await db.oneFirst(sql.type(z.object({ n: z.number() }))`
      SELECT ((SELECT count(*) FROM ducklake_table) + (SELECT count(*) FROM ducklake_schema_versions) + (SELECT count(*) FROM ducklake_column))::int AS n`);
    return { types, primaryKeys, metadata, snapshots, changes, schemas, otherRows };
  }

  it("creates exactly the specification's tables and columns, in order", async () => {
    const db = await freshDatabase();
    await db.transaction((tx) => initializeCatalog(tx, options));
    const actual = await columnsByTable(db);
    assert.equal(Object.keys(fixture.tables).length, 28);
    assert.deepEqual(Object.keys(actual).sort(), Object.keys(fixture.tables).sort());
    for (const [table, columns] of Object.entries(fixture.tables)) assert.deepEqual(actual[table], columns, table);
  });

  it("maps the spec types to Postgres types and declares the primary keys", async () => {
    const db = await freshDatabase();
    await db.transaction((tx) => initializeCatalog(tx, options));
    const { types, primaryKeys } = await shape(db);
    assert.deepEqual([...new Set(types.map((t) => t.type))].sort(), ["bigint", "boolean", "character varying", "timestamp with time zone", "uuid"]);
    const typeOf = (t: string, c: string) => types.find((r) => r.t === t && r.c === c)?.type;
    assert.equal(typeOf("ducklake_snapshot", "snapshot_time"), "timestamp with time zone");
    assert.equal(typeOf("ducklake_files_scheduled_for_deletion", "schedule_start"), "timestamp with time zone");
    assert.equal(typeOf("ducklake_schema", "schema_uuid"), "uuid");
    assert.equal(typeOf("ducklake_schema", "path_is_relative"), "boolean");
    assert.equal(typeOf("ducklake_metadata", "value"), "character varying");
    const notNull = types.filter((t) => t.nullable === "NO").map((t) => `${t.t}.${t.c}`);
    assert.deepEqual(notNull.filter((n) => n.startsWith("ducklake_metadata.")), ["ducklake_metadata.key", "ducklake_metadata.value"]);
    assert.deepEqual(
      primaryKeys.map((p) => `${p.t}.${p.c}`),
      [
        "ducklake_data_file.data_file_id",
        "ducklake_delete_file.delete_file_id",
        "ducklake_schema.schema_id",
        "ducklake_snapshot.snapshot_id",
        "ducklake_snapshot_changes.snapshot_id",
      ],
    );
  });

  it("writes the initial rows: metadata, snapshot 0 with main, snapshot 1 with mart", async () => {
    const db = await freshDatabase();
    await db.transaction((tx) => initializeCatalog(tx, options));
    const s = await shape(db);
    assert.deepEqual(s.metadata, [
      { key: "created_by", value: "qod-test", scope: null, scope_id: null },
      { key: "data_path", value: "/srv/lake/tenant-a/", scope: null, scope_id: null },
      { key: "encrypted", value: "false", scope: null, scope_id: null },
      { key: "version", value: "1.0", scope: null, scope_id: null },
    ]);
    assert.deepEqual(s.snapshots, [
      { snapshot_id: 0n, schema_version: 0n, next_catalog_id: 1n, next_file_id: 0n },
      { snapshot_id: 1n, schema_version: 1n, next_catalog_id: 2n, next_file_id: 0n },
    ]);
    assert.deepEqual(s.changes, [
      { snapshot_id: 0n, changes_made: 'created_schema:"main"', author: null, commit_message: null, commit_extra_info: null },
      { snapshot_id: 1n, changes_made: 'created_schema:"mart"', author: null, commit_message: null, commit_extra_info: null },
    ]);
    assert.deepEqual(s.schemas, [
      { schema_id: 0n, begin_snapshot: 0n, end_snapshot: null, schema_name: "main", path: "main/", path_is_relative: true },
      { schema_id: 1n, begin_snapshot: 1n, end_snapshot: null, schema_name: "mart", path: "mart/", path_is_relative: true },
    ]);
    assert.equal(s.otherRows, 0);

    const times = await db.anyFirst(sql.type(z.object({ t: z.boolean() }))`
      SELECT snapshot_time IS NOT NULL AND snapshot_time <= now() + interval '1 minute' AS t FROM ducklake_snapshot ORDER BY snapshot_id`);
    assert.deepEqual(times, [true, true]);
    const ordered = await db.oneFirst(sql.type(z.object({ ok: z.boolean() }))`
      SELECT (SELECT snapshot_time FROM ducklake_snapshot WHERE snapshot_id = 0) < (SELECT snapshot_time FROM ducklake_snapshot WHERE snapshot_id = 1) AS ok`);
    assert.equal(ordered, true);
    const uuids = await db.anyFirst(sql.type(z.object({ u: z.string() }))`SELECT schema_uuid::text AS u FROM ducklake_schema ORDER BY schema_id`);
    assert.equal(uuids.length, 2);
    for (const u of uuids) assert.match(u, UUID);
    assert.notEqual(uuids[0], uuids[1]);

    assert.deepEqual(await verifyCatalog(db), { version: DUCKLAKE_SPEC_VERSION, schemas: ["main", "mart"] });
  });

  it("gives the same shape in every fresh database", async () => {
    const a = await freshDatabase();
    const b = await freshDatabase();
    await a.transaction((tx) => initializeCatalog(tx, options));
    await b.transaction((tx) => initializeCatalog(tx, options));
    assert.deepEqual(await shape(a), await shape(b));
  });

  it("is all or nothing", async () => {
    const db = await freshDatabase();
    // the caller's transaction fails after the catalog was written: nothing stays
    await assert.rejects(
      db.transaction(async (tx) => {
        await initializeCatalog(tx, options);
        throw new Error("crash");
      }),
      /crash/,
    );
    assert.deepEqual(await columnsByTable(db), {});
    await assert.rejects(verifyCatalog(db), /incomplete/);

    // a second run on a whole catalog fails inside its savepoint and leaves the catalog as it was
    await db.transaction((tx) => initializeCatalog(tx, options));
    const before = await shape(db);
    await assert.rejects(db.transaction((tx) => initializeCatalog(tx, { ...options, schemas: ["other"] })));
    assert.deepEqual(await shape(db), before);
  });

  it("records each extra schema as its own snapshot, quoting names as the spec says", async () => {
    const db = await freshDatabase();
    await db.transaction((tx) =>
      initializeCatalog(tx, { dataPath: "s3://bucket/lake", encrypted: true, createdBy: "x", schemas: ["main", "mart", 'Odd "name"', "mart", "raw"] }),
    );
    const s = await shape(db);
    assert.deepEqual(
      s.snapshots.map((r) => [r.snapshot_id, r.schema_version, r.next_catalog_id, r.next_file_id]),
      [[0n, 0n, 1n, 0n], [1n, 1n, 2n, 0n], [2n, 2n, 3n, 0n], [3n, 3n, 4n, 0n]],
    );
    assert.deepEqual(
      s.changes.map((r) => r.changes_made),
      ['created_schema:"main"', 'created_schema:"mart"', 'created_schema:"Odd ""name"""', 'created_schema:"raw"'],
    );
    assert.deepEqual(s.schemas.map((r) => [r.schema_id, r.begin_snapshot, r.schema_name]), [[0n, 0n, "main"], [1n, 1n, "mart"], [2n, 2n, 'Odd "name"'], [3n, 3n, "raw"]]);
    // a name with other characters gets a directory named after its uuid, as the extension does
    const odd = await db.one(sql.type(z.object({ path: z.string(), u: z.string() }))`
      SELECT path, schema_uuid::text AS u FROM ducklake_schema WHERE schema_id = 2`);
    assert.equal(odd.path, `${odd.u}/`);
    assert.deepEqual(
      s.metadata.filter((m) => m.key === "data_path" || m.key === "encrypted").map((m) => m.value),
      ["s3://bucket/lake/", "true"],
    );
  });

  it("normalises the data path and the schema list", () => {
    assert.equal(normalizeDataPath("/data/lake"), "/data/lake/");
    assert.equal(normalizeDataPath("/data/lake/"), "/data/lake/");
    assert.equal(normalizeDataPath("/data/lake///"), "/data/lake/");
    assert.equal(normalizeDataPath("s3://b/p"), "s3://b/p/");
    assert.throws(() => normalizeDataPath(" "));
    assert.deepEqual(extraSchemas(["main", "a", "b", "a", "main"]), ["a", "b"]);
    assert.throws(() => extraSchemas([""]));
    assert.equal(quoteName('a"b'), '"a""b"');
    assert.equal(catalogStatements({ ...options, schemas: [] }).length, 28 + 4);
    assert.equal(catalogStatements({ ...options, schemas: ["x", "y"] }).length, 28 + 4 + 2 * 3);
  });
});
