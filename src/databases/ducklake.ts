// Creates a DuckLake v1.0 catalog in the connection's current schema (`public` by default), the
// way the ducklake extension does on a Postgres catalog: the 28 tables of the specification, then
// snapshot 0 with schema `main`, then one later snapshot per extra schema, as the extension commits
// a CREATE SCHEMA. Sources: duckdb/ducklake src/storage/ducklake_metadata_manager.cpp
// (GetCreateTableStatements, InitializeDuckLake; GetVersionString = V1_0) and
// src/storage/ducklake_transaction.cpp (FlushChanges, GetNewSchemas); the per-table pages of
// duckdb/ducklake-web docs/stable/specification/tables/ (spec v1.0).
import { randomUUID } from "node:crypto";
import type { CommonQueryMethods, QuerySqlToken } from "slonik";
import { z } from "zod";
import { sql } from "../db/sql";

export const DUCKLAKE_SPEC_VERSION = "1.0";

export interface CatalogOptions {
  /** Root of the lake's data files; stored with exactly one trailing '/'. */
  dataPath: string;
  encrypted: boolean;
  /** The `created_by` metadata value, e.g. "qod-control-plane 0.1.0". */
  createdBy: string;
  /** Schemas to create besides `main`; `main` and repeats are ignored. */
  schemas: string[];
}

type SpecType = "BIGINT" | "VARCHAR" | "BOOLEAN" | "UUID" | "TIMESTAMPTZ";
type Column = readonly [name: string, type: SpecType, constraint?: "PRIMARY KEY" | "NOT NULL"];

// The extension sends these type names to Postgres unchanged, so VARCHAR becomes unbounded varchar.
const PG_TYPE: Record<SpecType, ReturnType<typeof sql.fragment>> = {
  BIGINT: sql.fragment`bigint`,
  VARCHAR: sql.fragment`varchar`,
  BOOLEAN: sql.fragment`boolean`,
  UUID: sql.fragment`uuid`,
  TIMESTAMPTZ: sql.fragment`timestamptz`,
};

const I = "BIGINT";
const V = "VARCHAR";
const B = "BOOLEAN";
const U = "UUID";
const TZ = "TIMESTAMPTZ";
const PK = "PRIMARY KEY";

/** The v1.0 tables, in the extension's creation order, columns in specification order. */
export const DUCKLAKE_TABLES: ReadonlyArray<{ name: string; columns: readonly Column[] }> = [
  { name: "ducklake_metadata", columns: [["key", V, "NOT NULL"], ["value", V, "NOT NULL"], ["scope", V], ["scope_id", I]] },
  {
    name: "ducklake_snapshot",
    columns: [["snapshot_id", I, PK], ["snapshot_time", TZ], ["schema_version", I], ["next_catalog_id", I], ["next_file_id", I]],
  },
  {
    name: "ducklake_snapshot_changes",
    columns: [["snapshot_id", I, PK], ["changes_made", V], ["author", V], ["commit_message", V], ["commit_extra_info", V]],
  },
  {
    name: "ducklake_schema",
    columns: [["schema_id", I, PK], ["schema_uuid", U], ["begin_snapshot", I], ["end_snapshot", I], ["schema_name", V], ["path", V], ["path_is_relative", B]],
  },
  {
    name: "ducklake_table",
    columns: [["table_id", I], ["table_uuid", U], ["begin_snapshot", I], ["end_snapshot", I], ["schema_id", I], ["table_name", V], ["path", V], ["path_is_relative", B]],
  },
  {
    name: "ducklake_view",
    columns: [["view_id", I], ["view_uuid", U], ["begin_snapshot", I], ["end_snapshot", I], ["schema_id", I], ["view_name", V], ["dialect", V], ["sql", V], ["column_aliases", V]],
  },
  { name: "ducklake_tag", columns: [["object_id", I], ["begin_snapshot", I], ["end_snapshot", I], ["key", V], ["value", V]] },
  {
    name: "ducklake_column_tag",
    columns: [["table_id", I], ["column_id", I], ["begin_snapshot", I], ["end_snapshot", I], ["key", V], ["value", V]],
  },
  {
    name: "ducklake_data_file",
    columns: [
      ["data_file_id", I, PK], ["table_id", I], ["begin_snapshot", I], ["end_snapshot", I], ["file_order", I], ["path", V],
      ["path_is_relative", B], ["file_format", V], ["record_count", I], ["file_size_bytes", I], ["footer_size", I],
      ["row_id_start", I], ["partition_id", I], ["encryption_key", V], ["mapping_id", I], ["partial_max", I],
    ],
  },
  {
    name: "ducklake_file_column_stats",
    columns: [
      ["data_file_id", I], ["table_id", I], ["column_id", I], ["column_size_bytes", I], ["value_count", I], ["null_count", I],
      ["min_value", V], ["max_value", V], ["contains_nan", B], ["extra_stats", V],
    ],
  },
  {
    name: "ducklake_file_variant_stats",
    columns: [
      ["data_file_id", I], ["table_id", I], ["column_id", I], ["variant_path", V], ["shredded_type", V], ["column_size_bytes", I],
      ["value_count", I], ["null_count", I], ["min_value", V], ["max_value", V], ["contains_nan", B], ["extra_stats", V],
    ],
  },
  {
    name: "ducklake_delete_file",
    columns: [
      ["delete_file_id", I, PK], ["table_id", I], ["begin_snapshot", I], ["end_snapshot", I], ["data_file_id", I], ["path", V],
      ["path_is_relative", B], ["format", V], ["delete_count", I], ["file_size_bytes", I], ["footer_size", I],
      ["encryption_key", V], ["partial_max", I],
    ],
  },
  {
    name: "ducklake_column",
    columns: [
      ["column_id", I], ["begin_snapshot", I], ["end_snapshot", I], ["table_id", I], ["column_order", I], ["column_name", V],
      ["column_type", V], ["initial_default", V], ["default_value", V], ["nulls_allowed", B], ["parent_column", I],
      ["default_value_type", V], ["default_value_dialect", V],
    ],
  },
  { name: "ducklake_table_stats", columns: [["table_id", I], ["record_count", I], ["next_row_id", I], ["file_size_bytes", I]] },
  {
    name: "ducklake_table_column_stats",
    columns: [["table_id", I], ["column_id", I], ["contains_null", B], ["contains_nan", B], ["min_value", V], ["max_value", V], ["extra_stats", V]],
  },
  { name: "ducklake_partition_info", columns: [["partition_id", I], ["table_id", I], ["begin_snapshot", I], ["end_snapshot", I]] },
  {
    name: "ducklake_partition_column",
    columns: [["partition_id", I], ["table_id", I], ["partition_key_index", I], ["column_id", I], ["transform", V]],
  },
  {
    name: "ducklake_file_partition_value",
    columns: [["data_file_id", I], ["table_id", I], ["partition_key_index", I], ["partition_value", V]],
  },
  {
    name: "ducklake_files_scheduled_for_deletion",
    columns: [["data_file_id", I], ["path", V], ["path_is_relative", B], ["schedule_start", TZ]],
  },
  { name: "ducklake_inlined_data_tables", columns: [["table_id", I], ["table_name", V], ["schema_version", I]] },
  { name: "ducklake_column_mapping", columns: [["mapping_id", I], ["table_id", I], ["type", V]] },
  {
    name: "ducklake_name_mapping",
    columns: [["mapping_id", I], ["column_id", I], ["source_name", V], ["target_field_id", I], ["parent_column", I], ["is_partition", B]],
  },
  { name: "ducklake_schema_versions", columns: [["begin_snapshot", I], ["schema_version", I], ["table_id", I]] },
  {
    name: "ducklake_macro",
    columns: [["schema_id", I], ["macro_id", I], ["macro_name", V], ["begin_snapshot", I], ["end_snapshot", I]],
  },
  { name: "ducklake_macro_impl", columns: [["macro_id", I], ["impl_id", I], ["dialect", V], ["sql", V], ["type", V]] },
  {
    name: "ducklake_macro_parameters",
    columns: [
      ["macro_id", I], ["impl_id", I], ["column_id", I], ["parameter_name", V], ["parameter_type", V], ["default_value", V],
      ["default_value_type", V],
    ],
  },
  { name: "ducklake_sort_info", columns: [["sort_id", I], ["table_id", I], ["begin_snapshot", I], ["end_snapshot", I]] },
  {
    name: "ducklake_sort_expression",
    columns: [
      ["sort_id", I], ["table_id", I], ["sort_key_index", I], ["expression", V], ["dialect", V], ["sort_direction", V],
      ["null_order", V],
    ],
  },
];

/** The path with exactly one trailing '/', as the spec requires of `data_path`. */
export function normalizeDataPath(dataPath: string): string {
  if (dataPath.trim() === "") throw new Error("a DuckLake catalog on Postgres needs a data path");
  return `${dataPath.replace(/\/+$/, "")}/`;
}

/** A name as written in `changes_made`: double-quoted, inner quotes doubled. */
export function quoteName(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** The extension names a schema's directory after it only when the name is [A-Za-z0-9_-]+; otherwise after its uuid. */
function schemaPath(name: string, uuid: string): string {
  return /^[A-Za-z0-9_-]+$/.test(name) ? `${name}/` : `${uuid}/`;
}

/** The schemas to create after `main`, first occurrence wins. */
export function extraSchemas(schemas: readonly string[]): string[] {
  const out: string[] = [];
  for (const name of schemas) {
    if (name === "") throw new Error("schema names must not be empty");
    if (name !== "main" && !out.includes(name)) out.push(name);
  }
  return out;
}

const voidQuery = sql.typeAlias("void");

function createTable(table: (typeof DUCKLAKE_TABLES)[number]): QuerySqlToken {
  const columns = table.columns.map(([name, type, constraint]) => {
    const suffix = constraint === "PRIMARY KEY" ? sql.fragment` PRIMARY KEY` : constraint === "NOT NULL" ? sql.fragment` NOT NULL` : sql.fragment``;
    return sql.fragment`${sql.identifier([name])} ${PG_TYPE[type]}${suffix}`;
  });
  return voidQuery`CREATE TABLE ${sql.identifier([table.name])} (${sql.join(columns, sql.fragment`, `)})`;
}

/** Every statement of a new catalog, in order. Run them in one transaction (see initializeCatalog). */
export function catalogStatements(options: CatalogOptions): QuerySqlToken[] {
  const dataPath = normalizeDataPath(options.dataPath);
  const statements = DUCKLAKE_TABLES.map(createTable);

  // InitializeDuckLake: snapshot 0 holds `main` (catalog id 0), so next_catalog_id starts at 1.
  const mainUuid = randomUUID();
  statements.push(
    voidQuery`INSERT INTO ducklake_snapshot (snapshot_id, snapshot_time, schema_version, next_catalog_id, next_file_id)
      VALUES (0, now(), 0, 1, 0)`,
    voidQuery`INSERT INTO ducklake_snapshot_changes (snapshot_id, changes_made, author, commit_message, commit_extra_info)
      VALUES (0, ${`created_schema:${quoteName("main")}`}, NULL, NULL, NULL)`,
    voidQuery`INSERT INTO ducklake_metadata (key, value, scope, scope_id) VALUES
      ('version', ${DUCKLAKE_SPEC_VERSION}, NULL, NULL),
      ('created_by', ${options.createdBy}, NULL, NULL),
      ('data_path', ${dataPath}, NULL, NULL),
      ('encrypted', ${options.encrypted ? "true" : "false"}, NULL, NULL)`,
    voidQuery`INSERT INTO ducklake_schema (schema_id, schema_uuid, begin_snapshot, end_snapshot, schema_name, path, path_is_relative)
      VALUES (0, ${sql.uuid(mainUuid)}, 0, NULL, 'main', 'main/', true)`,
  );

  let previous: Snapshot = { snapshot_id: 0, schema_version: 0, next_catalog_id: 1, next_file_id: 0 };
  for (const name of extraSchemas(options.schemas)) {
    const commit = createSchemaCommit(previous, name);
    statements.push(...commit.statements);
    previous = commit.snapshot;
  }
  return statements;
}

// BIGINT columns: slonik reads them as bigint.
const Snapshot = z.object({
  snapshot_id: z.coerce.number(),
  schema_version: z.coerce.number(),
  next_catalog_id: z.coerce.number(),
  next_file_id: z.coerce.number(),
});
type Snapshot = z.infer<typeof Snapshot>;

/**
 * The commit of one CREATE SCHEMA after snapshot `previous`, as the extension's FlushChanges
 * writes it: snapshot_id + 1, schema_version + 1 (a schema change), schema_id taken from
 * next_catalog_id which then moves on; next_file_id stays.
 */
function createSchemaCommit(previous: Snapshot, name: string): { statements: QuerySqlToken[]; snapshot: Snapshot } {
  const snapshot = {
    snapshot_id: previous.snapshot_id + 1,
    schema_version: previous.schema_version + 1,
    next_catalog_id: previous.next_catalog_id + 1,
    next_file_id: previous.next_file_id,
  };
  const schemaId = previous.next_catalog_id;
  const uuid = randomUUID();
  const statements = [
    // clock_timestamp(): later snapshots must not share an earlier one's transaction time.
    voidQuery`INSERT INTO ducklake_snapshot (snapshot_id, snapshot_time, schema_version, next_catalog_id, next_file_id)
      VALUES (${snapshot.snapshot_id}, clock_timestamp(), ${snapshot.schema_version}, ${snapshot.next_catalog_id}, ${snapshot.next_file_id})`,
    voidQuery`INSERT INTO ducklake_snapshot_changes (snapshot_id, changes_made, author, commit_message, commit_extra_info)
      VALUES (${snapshot.snapshot_id}, ${`created_schema:${quoteName(name)}`}, NULL, NULL, NULL)`,
    voidQuery`INSERT INTO ducklake_schema (schema_id, schema_uuid, begin_snapshot, end_snapshot, schema_name, path, path_is_relative)
      VALUES (${schemaId}, ${sql.uuid(uuid)}, ${snapshot.snapshot_id}, NULL, ${name}, ${schemaPath(name, uuid)}, true)`,
  ];
  return { statements, snapshot };
}

/**
 * Adds to an existing catalog the schemas it does not hold (live), each as its own commit after
 * the catalog's latest snapshot; returns those added. Run it in a transaction: a DuckDB client
 * committing at the same moment makes the snapshot id collide, and the whole is refused.
 */
export async function addSchemas(connection: CommonQueryMethods, schemas: readonly string[]): Promise<string[]> {
  const added: string[] = [];
  for (const name of extraSchemas(schemas)) {
    const live = await connection.exists(sql.type(z.object({ exists: z.boolean() }))`
      SELECT 1 FROM ducklake_schema WHERE schema_name = ${name} AND end_snapshot IS NULL`);
    if (live) continue;
    const latest = await connection.one(sql.type(Snapshot)`
      SELECT snapshot_id, schema_version, next_catalog_id, next_file_id FROM ducklake_snapshot ORDER BY snapshot_id DESC LIMIT 1`);
    for (const statement of createSchemaCommit(latest, name).statements) await connection.query(statement);
    added.push(name);
  }
  return added;
}

/**
 * Creates the catalog inside `connection`'s transaction. The statements run in a nested
 * transaction (a savepoint), so even a pool passed by mistake gets all of it or none.
 */
export async function initializeCatalog(connection: CommonQueryMethods, options: CatalogOptions): Promise<void> {
  const statements = catalogStatements(options);
  await connection.transaction(async (tx) => {
    for (const statement of statements) await tx.query(statement);
  });
}

/**
 * The catalog's format version and live schema names (ordered by id). Throws if any of the 28
 * tables is missing or there is no global `version` row, i.e. the catalog is not whole.
 */
export async function verifyCatalog(connection: CommonQueryMethods): Promise<{ version: string; schemas: string[] }> {
  const names = DUCKLAKE_TABLES.map((t) => t.name);
  const present = await connection.anyFirst(sql.type(z.object({ table_name: z.string() }))`
    SELECT table_name::text FROM information_schema.tables
    WHERE table_schema = current_schema() AND table_name = ANY(${sql.array(names, "text")})`);
  const missing = names.filter((n) => !present.includes(n));
  if (missing.length > 0) throw new Error(`DuckLake catalog is incomplete: missing ${missing.join(", ")}`);
  const version = await connection.maybeOneFirst(sql.type(z.object({ value: z.string() }))`
    SELECT value FROM ducklake_metadata WHERE key = 'version' AND scope IS NULL`);
  if (version === null) throw new Error("DuckLake catalog has no version");
  const schemas = await connection.anyFirst(sql.type(z.object({ schema_name: z.string() }))`
    SELECT schema_name FROM ducklake_schema WHERE end_snapshot IS NULL ORDER BY schema_id`);
  return { version, schemas: [...schemas] };
}
