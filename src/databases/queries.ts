// All state SQL of the databases domain (the SQL run on tenant servers is in servers.ts and
// ducklake.ts). Each query takes the connection first, so the caller owns the transaction.
import type { CommonQueryMethods } from "slonik";
import { z } from "zod";
import { withAuditRow, type Actor, type AuditEntry } from "../db/audit";
import { sql } from "../db/sql";
import type { OneStatement } from "../db/transaction";
import type { Page } from "../pagination";
import { DatabaseRow, type Kind, type Status } from "./rows";

const columns = sql.fragment`
  id, tenant, name, suffix, kind, data_path, effective_data_path, metastore, object_store, secrets,
  default_database, default_schema, disabled, status, status_reason, status_message, request_id,
  provisioning_started_at, created_at, updated_at`;

/** `change` (returning every column) with its audit row, answering the changed row. */
const audited = (actor: Actor, entry: AuditEntry, change: ReturnType<typeof sql.fragment>) =>
  sql.type(DatabaseRow)`${withAuditRow(actor, entry, change, (changed) => sql.fragment`SELECT * FROM ${changed}`)}`;

const Flag = z.object({ ok: z.boolean() });

export interface NewDatabase {
  id: string;
  tenant: string;
  name: string;
  suffix: string;
  kind: Kind;
  dataPath: string;
  effectiveDataPath: string;
  metastore: Record<string, string>;
  objectStore: Record<string, string>;
  secrets: Buffer | null;
  defaultDatabase: string;
  defaultSchema: string;
  /** PROVISIONING for a ducklake database, READY for kinds with nothing to provision. */
  status: Extract<Status, "PROVISIONING" | "READY">;
  requestId: string | null;
}

/**
 * Removes the tenant's FAILED rows that a new create of `name` (or a retry of `requestId`)
 * replaces: a failed attempt left nothing behind, so it never blocks another.
 */
export async function deleteFailedDatabases(db: CommonQueryMethods, tenant: string, name: string, requestId: string | null): Promise<void> {
  await db.query(sql.typeAlias("void")`
    DELETE FROM databases
    WHERE tenant = ${tenant} AND status = 'FAILED' AND (name = ${name} OR request_id = ${requestId})`);
}

/** Unique on the full name (server-wide) and on (tenant, request_id): the constraints decide races. */
export function insertDatabase(db: OneStatement, d: NewDatabase, actor: Actor): Promise<DatabaseRow> {
  return db.one(
    audited(
      actor,
      { action: "database.create", tenant: d.tenant, target: d.name, details: { kind: d.kind } },
      sql.fragment`
        INSERT INTO databases (id, tenant, name, suffix, kind, data_path, effective_data_path, metastore, object_store, secrets,
                               default_database, default_schema, status, request_id)
        VALUES (${d.id}, ${d.tenant}, ${d.name}, ${d.suffix}, ${d.kind}, ${d.dataPath}, ${d.effectiveDataPath},
                ${sql.jsonb(d.metastore)}, ${sql.jsonb(d.objectStore)}, ${d.secrets === null ? null : sql.binary(d.secrets)},
                ${d.defaultDatabase}, ${d.defaultSchema}, ${d.status}, ${d.requestId})
        RETURNING ${columns}`,
    ),
  );
}

// Advisory locks keyed by the full database name, in this namespace (an arbitrary constant), mark
// the one process working on that name. They are session locks: held by the connection that does
// the work and released when it ends, so a crashed process can never hold one.
const LOCK_NAMESPACE = 0x514f4401;

/** Waits until no one else works on `name`, then holds its lock until unlockDatabaseNames. */
export async function lockDatabaseName(db: CommonQueryMethods, name: string): Promise<void> {
  await db.query(sql.type(z.object({ locked: z.literal(true) }))`
    SELECT true AS locked FROM pg_advisory_lock(${LOCK_NAMESPACE}::int4, hashtext(${name}))`);
}

/** Takes the lock of `name` if no one holds it. */
export function tryLockDatabaseName(db: CommonQueryMethods, name: string): Promise<boolean> {
  return db.oneFirst(sql.type(Flag)`SELECT pg_try_advisory_lock(${LOCK_NAMESPACE}::int4, hashtext(${name})) AS ok`);
}

/** Releases every lock the connection holds (a connection works on one name at a time). */
export async function unlockDatabaseNames(db: CommonQueryMethods): Promise<void> {
  await db.query(sql.type(z.object({ ok: z.literal(true) }))`SELECT true AS ok FROM pg_advisory_unlock_all()`);
}

export function findDatabase(db: CommonQueryMethods, tenant: string, name: string): Promise<DatabaseRow | null> {
  return db.maybeOne(sql.type(DatabaseRow)`SELECT ${columns} FROM databases WHERE tenant = ${tenant} AND name = ${name}`);
}

export function findDatabaseById(db: CommonQueryMethods, id: string): Promise<DatabaseRow | null> {
  return db.maybeOne(sql.type(DatabaseRow)`SELECT ${columns} FROM databases WHERE id = ${id}`);
}

export function findDatabaseByRequestId(db: CommonQueryMethods, tenant: string, requestId: string): Promise<DatabaseRow | null> {
  return db.maybeOne(sql.type(DatabaseRow)`SELECT ${columns} FROM databases WHERE tenant = ${tenant} AND request_id = ${requestId}`);
}

/** Finds a database and locks its row for a delete in this transaction. */
export function lockDatabaseRow(db: CommonQueryMethods, tenant: string, name: string): Promise<DatabaseRow | null> {
  return db.maybeOne(sql.type(DatabaseRow)`
    SELECT ${columns} FROM databases WHERE tenant = ${tenant} AND name = ${name} FOR UPDATE`);
}

export function listDatabases(db: CommonQueryMethods, tenant: string, page: Page): Promise<readonly DatabaseRow[]> {
  return db.any(sql.type(DatabaseRow)`
    SELECT ${columns} FROM databases
    WHERE tenant = ${tenant} ${page.after === undefined ? sql.fragment`` : sql.fragment`AND name > ${page.after}`}
    ORDER BY name
    LIMIT ${page.limit + 1}`);
}

/** PROVISIONING and DELETING rows untouched for `graceMs`: candidates for the reconciler. */
export function listUnsettledDatabases(db: CommonQueryMethods, graceMs: number, limit: number): Promise<readonly DatabaseRow[]> {
  return db.any(sql.type(DatabaseRow)`
    SELECT ${columns} FROM databases
    WHERE status IN ('PROVISIONING', 'DELETING') AND updated_at < now() - make_interval(secs => ${graceMs / 1000})
    ORDER BY updated_at
    LIMIT ${limit}`);
}

/** Records that CREATE DATABASE is about to be sent; false if the row is no longer PROVISIONING. */
export async function markProvisioningStarted(db: CommonQueryMethods, id: string): Promise<boolean> {
  const result = await db.query(sql.typeAlias("void")`
    UPDATE databases SET provisioning_started_at = now(), updated_at = now()
    WHERE id = ${id} AND status = 'PROVISIONING'`);
  return result.rowCount > 0;
}

export function markDatabaseReady(db: CommonQueryMethods, id: string): Promise<DatabaseRow | null> {
  return db.maybeOne(sql.type(DatabaseRow)`
    UPDATE databases SET status = 'READY', status_reason = '', status_message = '', updated_at = now()
    WHERE id = ${id} AND status = 'PROVISIONING' RETURNING ${columns}`);
}

export function markDatabaseFailed(db: CommonQueryMethods, id: string, reason: string, message: string): Promise<DatabaseRow | null> {
  return db.maybeOne(sql.type(DatabaseRow)`
    UPDATE databases SET status = 'FAILED', status_reason = ${reason}, status_message = ${message}, updated_at = now()
    WHERE id = ${id} AND status = 'PROVISIONING' RETURNING ${columns}`);
}

/** Whether pools use the database. Race-free only under lockDatabaseRow: a new pool needs a key-share lock on the row. */
export function databaseHasPools(db: CommonQueryMethods, id: string): Promise<boolean> {
  return db.oneFirst(sql.type(Flag)`SELECT EXISTS (SELECT 1 FROM pools WHERE database_id = ${id}) AS ok`);
}

/** A DeleteDatabase that drops the Postgres database: the row is DELETING until the drop is done. */
export function markDatabaseDeleting(db: OneStatement, row: DatabaseRow, actor: Actor): Promise<DatabaseRow> {
  return db.one(
    audited(
      actor,
      { action: "database.delete", tenant: row.tenant, target: row.name, details: { dropDatabase: true } },
      sql.fragment`UPDATE databases SET status = 'DELETING', updated_at = now() WHERE id = ${row.id} RETURNING ${columns}`,
    ),
  );
}

/** Deletes the row; pools reference it without cascade, so one with pools fails as `has_pools`. */
export async function deleteDatabaseRow(db: CommonQueryMethods, id: string): Promise<boolean> {
  const result = await db.query(sql.typeAlias("void")`DELETE FROM databases WHERE id = ${id}`);
  return result.rowCount > 0;
}

/** A DeleteDatabase that keeps the Postgres database: the row goes, with its audit row. */
export async function deleteDatabaseKeepingData(db: OneStatement, row: DatabaseRow, actor: Actor): Promise<boolean> {
  const deleted = await db.maybeOne(
    audited(
      actor,
      { action: "database.delete", tenant: row.tenant, target: row.name, details: { dropDatabase: false } },
      sql.fragment`DELETE FROM databases WHERE id = ${row.id} RETURNING ${columns}`,
    ),
  );
  return deleted !== null;
}

export interface DatabaseSettings {
  metastore: Record<string, string>;
  objectStore: Record<string, string>;
  secrets: Buffer | null;
  defaultDatabase: string;
  defaultSchema: string;
}

/** `changed` names what the update was asked to change (key names only: values may be secrets). */
export function updateDatabaseSettings(db: OneStatement, row: DatabaseRow, s: DatabaseSettings, changed: Record<string, unknown>, actor: Actor): Promise<DatabaseRow | null> {
  return db.maybeOne(
    audited(
      actor,
      { action: "database.update", tenant: row.tenant, target: row.name, details: changed },
      sql.fragment`
        UPDATE databases
        SET metastore = ${sql.jsonb(s.metastore)}, object_store = ${sql.jsonb(s.objectStore)},
            secrets = ${s.secrets === null ? null : sql.binary(s.secrets)},
            default_database = ${s.defaultDatabase}, default_schema = ${s.defaultSchema}, updated_at = now()
        WHERE id = ${row.id} RETURNING ${columns}`,
    ),
  );
}
