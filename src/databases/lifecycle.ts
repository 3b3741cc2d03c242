// The lifecycle of a database row and of the Postgres database it stands for: create, update and
// delete, and `settle`, which finishes or rolls back what an interrupted one left.
//
//            create ─► PROVISIONING ──(database + catalog made)──► READY ──delete+drop──► DELETING ─► (gone)
//                           │                                        │                      │
//                           └──(failure, rolled back)──► FAILED      └─delete (keep data)─► (gone)
//
// A ducklake create is three steps: the row is recorded PROVISIONING (one transaction), the
// Postgres database and its catalog are made on the tenant server (servers.ts), and the row
// becomes READY or FAILED (another statement). A drop is: the row becomes DELETING, the database
// is dropped, the row is deleted. A crash can stop either between steps; `settle` finishes or
// rolls back such a row, and the reconciler (reconcile.ts, only a timer) runs it for rows nobody
// works on.
//
// Locks. Who works on a row: the process holding the session advisory lock of its name
// (queries.ts lockDatabaseName), on a connection of the lock pool. A create takes it in the
// transaction that inserts the row, so the row is never visible unlocked while its creator lives;
// an update, a delete and the reconciler take it before they act. A crashed process's session
// ends and its locks go with it, so a row whose lock can be taken is a row nobody works on.
// Replicas share the state database, hence the locks. No state transaction is open while a tenant
// server is contacted.
//
// Invariants: the row is recorded before its database is made, and becomes READY only once the
// database holds the whole catalog; so there is no READY row without its database and catalog,
// and no database made by us without a row (`provisioning_started_at` tells a database this row
// made from one that was already there, which is never dropped nor adopted).
//
// FAILED means the create failed and whatever it made was dropped. The row stays visible, with
// the error's reason and a safe message, until DeleteDatabase removes it or a new create of the
// same name in its tenant (or a retry with its request id) replaces it: it never blocks a retry.
// Only repeats that waited on the running attempt answer its error; later ones try again.
import type { DatabasePool } from "slonik";
import type { Logger } from "pino";
import type { AuthedContext } from "../call/context";
import { throwIfAborted } from "../call/deadline";
import type { PgTarget } from "../config";
import { actorOf } from "../db/audit";
import { isUniqueViolation } from "../db/errors";
import type { CommonQueryMethods } from "../db/sql";
import { inStatement, inTransaction } from "../db/transaction";
import { AppError, invalid, notFound, type Reason } from "../errors";
import { newId } from "../ids";
import type { Metrics } from "../metrics";
import { createSemaphore } from "../semaphore";
import {
  databaseHasPools,
  deleteDatabaseKeepingData,
  deleteDatabaseRow,
  deleteFailedDatabases,
  findDatabase,
  findDatabaseById,
  findDatabaseByRequestId,
  insertDatabase,
  listUnsettledDatabases,
  lockDatabaseName,
  lockDatabaseRow,
  markDatabaseDeleting,
  markDatabaseFailed,
  markDatabaseReady,
  markProvisioningStarted,
  tryLockDatabaseName,
  unlockDatabaseNames,
  updateDatabaseSettings,
} from "./queries";
import type { DatabaseRow } from "./rows";
import type { PoolRole } from "./roles";
import { CREATED_BY, effectiveTarget, type Servers } from "./servers";
import { mergeSettings, type CreateDatabaseCommand, type DatabaseRef, type UpdateDatabaseCommand } from "./validate";
import type { Vault } from "../vault";
import { openSecrets, sealSecrets } from "./vault";

export interface LifecycleDeps {
  /** Connections that hold session advisory locks (see db/state.ts). */
  lockPool: DatabasePool;
  /** How many lock connections calls may hold at once (the reconciler has one more). */
  lockSlots: number;
  servers: Servers;
  vault: Vault;
  /** The shared server (the global metastore defaults). */
  defaults: PgTarget;
  logger: Logger;
  /** Provisioning's duration and outcome, and what the reconciler's passes settle. */
  metrics: Pick<Metrics, "provisioning" | "reconcilerActions">;
}

export interface Lifecycle {
  create(ctx: AuthedContext, command: CreateDatabaseCommand): Promise<DatabaseRow>;
  update(ctx: AuthedContext, command: UpdateDatabaseCommand): Promise<DatabaseRow>;
  delete(ctx: AuthedContext, ref: DatabaseRef & { dropDatabase: boolean }): Promise<void>;
  /**
   * Settles the PROVISIONING and DELETING rows untouched for `graceMs` that nobody works on
   * (the reconciler's pass); returns how many it settled.
   */
  settleAbandoned(graceMs?: number): Promise<number>;
  /** Makes a pool's role on its database's server, or brings it back in line (roles.ts). */
  ensurePoolRole(role: PoolRole): Promise<void>;
  /** Drops a pool's role from its database's server. */
  dropPoolRole(role: Omit<PoolRole, "verifier">): Promise<void>;
}

/**
 * The reconciler leaves rows alone until they are this old, although the lock already proves
 * nobody works on them: a creator whose state session dropped mid-way may still be about to
 * send CREATE DATABASE (it refreshes `updated_at` right before sending it).
 */
export const RECONCILE_GRACE_MS = 5_000;
const BATCH = 100;

interface Failure {
  reason: Reason;
  message: string;
}

const INTERRUPTED: Failure = { reason: "unavailable", message: "provisioning was interrupted; everything it created was rolled back" };

const lostLock = () => new AppError("unavailable", "the state database connection was lost during provisioning; it will be settled shortly");

export function isUnsettled(row: DatabaseRow): boolean {
  return row.status === "PROVISIONING" || row.status === "DELETING";
}

/** A settled row as the answer to its create: the database when READY, the first attempt's error when FAILED. */
function outcome(row: DatabaseRow | null): DatabaseRow {
  if (row?.status === "READY") return row;
  if (row?.status === "FAILED") throw new AppError(row.status_reason || "unavailable", row.status_message);
  throw notFound("database");
}

export function createLifecycle(deps: LifecycleDeps): Lifecycle {
  const log = deps.logger.child({ component: "lifecycle" });
  // At most lockSlots calls hold a lock connection for the length of a provisioning or a drop;
  // the others wait their turn here, in order, rather than time out in the pool's queue.
  const slots = createSemaphore(deps.lockSlots);

  /** Runs `work` on a lock connection of its own; every lock it took is released after. */
  const withLockConnection = <T>(work: (conn: CommonQueryMethods) => Promise<T>): Promise<T> =>
    slots.run(() =>
      deps.lockPool.connect(async (conn) => {
        try {
          return await work(conn);
        } finally {
          await unlockDatabaseNames(conn);
        }
      }),
    );

  /** The server of a ducklake row, from its stored metastore and secrets. */
  const targetOf = (row: DatabaseRow): PgTarget => effectiveTarget(deps.defaults, row.metastore, openSecrets(deps.vault, row.id, row.secrets));

  /**
   * Finishes or rolls back a PROVISIONING or DELETING row; returns the row after (null once
   * deleted). The caller must hold the lock of `row.name` on `conn`. A PROVISIONING row becomes
   * READY when its database holds a whole catalog (everything was made; only the last write was
   * lost); otherwise whatever exists is dropped and the row becomes FAILED with `failure`. Throws,
   * leaving the row as it was, when the tenant server cannot be reached.
   */
  async function settle(conn: CommonQueryMethods, row: DatabaseRow, failure: Failure = INTERRUPTED): Promise<DatabaseRow | null> {
    if (row.status === "DELETING") {
      if (row.kind === "ducklake") await deps.servers.dropDatabase(targetOf(row), row.name);
      await deleteDatabaseRow(conn, row.id);
      return null;
    }
    if (row.status !== "PROVISIONING") return row;
    // Until CREATE DATABASE was about to be sent, a database of this name is not ours to judge.
    if (row.provisioning_started_at !== null) {
      const target = targetOf(row);
      const state = await deps.servers.inspect(target, row.name);
      if (state === "whole") return (await markDatabaseReady(conn, row.id)) ?? findDatabaseById(conn, row.id);
      if (state === "partial") await deps.servers.dropDatabase(target, row.name);
    }
    return (await markDatabaseFailed(conn, row.id, failure.reason, failure.message)) ?? findDatabaseById(conn, row.id);
  }

  /**
   * Runs a create's provisioning or a delete's drop: its duration and outcome go to the metrics
   * and a lifecycle line to the log.
   */
  async function observed<T>(operation: "create" | "delete", row: DatabaseRow, work: () => Promise<T>): Promise<T> {
    const stop = deps.metrics.provisioning.startTimer({ operation });
    const fields = { operation, tenant: row.tenant, database: row.name };
    try {
      const result = await work();
      log.info({ ...fields, ms: Math.round(stop({ outcome: "ok" }) * 1000) }, operation === "create" ? "provisioned a database" : "dropped a database");
      return result;
    } catch (err) {
      const seconds = stop({ outcome: "failed" });
      log.warn({ ...fields, ms: Math.round(seconds * 1000), reason: err instanceof AppError ? err.reason : "internal" }, operation === "create" ? "provisioning failed" : "dropping failed");
      throw err;
    }
  }

  /** Waits until no one else works on the database, then reads it. */
  async function lockedRow(conn: CommonQueryMethods, ctx: AuthedContext, ref: DatabaseRef): Promise<DatabaseRow | null> {
    await inTransaction(conn, ctx, (tx) => lockDatabaseName(tx, ref.name.full));
    return findDatabase(conn, ref.tenant, ref.name.full);
  }

  /**
   * A create whose requestId was already used: wait until the first attempt is over (its lock is
   * free), then answer what it got. A create of another name with the same requestId is an error.
   */
  async function repeatOf(conn: CommonQueryMethods, ctx: AuthedContext, first: DatabaseRow, command: CreateDatabaseCommand): Promise<DatabaseRow> {
    if (first.name !== command.name.full) {
      throw invalid([{ field: "request_id", reason: "invalid_request_id", description: "was already used to create another database" }]);
    }
    await inTransaction(conn, ctx, (tx) => lockDatabaseName(tx, first.name));
    const row = await findDatabaseById(conn, first.id);
    // Still unsettled under the lock: the first attempt's process died; finish its work here.
    return outcome(row && isUnsettled(row) ? await settle(conn, row) : row);
  }

  /** Makes the Postgres database and its catalog; on failure rolls back what was made (or finds it all made). */
  async function provision(conn: CommonQueryMethods, ctx: AuthedContext, row: DatabaseRow, command: CreateDatabaseCommand): Promise<DatabaseRow> {
    const target = effectiveTarget(deps.defaults, command.metastore, command.secrets);
    try {
      throwIfAborted(ctx); // never start provisioning after cancellation
      // Someone else's database (or one kept by an earlier delete) is never adopted nor dropped.
      if (await deps.servers.databaseExists(target, row.name)) {
        throw new AppError("exists", "a Postgres database with this name already exists on its server");
      }
      await deps.servers.withAdmin(target, async (admin) => {
        // On the admin connection's turn: proves our session, and so our lock, is alive, and marks
        // the database as ours from here on.
        if (!(await markProvisioningStarted(conn, row.id))) throw lostLock();
        await admin.createDatabase(row.name);
      });
      await deps.servers.writeCatalog(target, row.name, {
        dataPath: command.effectiveDataPath,
        encrypted: false,
        createdBy: CREATED_BY,
        schemas: [command.metastore.schemaName ?? "", command.defaultSchema].filter((s) => s !== ""),
      });
    } catch (failure) {
      if (!(failure instanceof AppError)) throw failure; // servers and the signal throw only AppErrors; the reconciler settles after a bug
      let settled: DatabaseRow | null;
      try {
        // Reading our row first proves the session (and lock) is still ours; if it is not, the
        // reconciler settles the row and we must not touch the server.
        const current = await findDatabaseById(conn, row.id);
        settled = current && (await settle(conn, current, failure));
      } catch (settling) {
        if (!(settling instanceof AppError)) throw settling;
        // The server cannot be reached to roll back now: the row stays PROVISIONING, and the
        // reconciler settles it (drops what was made, or finds it whole) once it can.
        throw new AppError(failure.reason, `${failure.message}; the database will be settled once its server can be reached`, failure.violations, { cause: failure });
      }
      if (settled?.status === "READY") return settled; // the catalog did commit; only its answer was lost
      throw failure;
    }
    const ready = await markDatabaseReady(conn, row.id);
    if (!ready) throw lostLock();
    return ready;
  }

  return {
    async create(ctx, command) {
      const id = newId("td");
      const secrets = sealSecrets(deps.vault, id, command.secrets);
      return withLockConnection(async (conn) => {
        let row: DatabaseRow;
        try {
          row = await inTransaction(conn, ctx, async (tx) => {
            await deleteFailedDatabases(tx, command.tenant, command.name.full, command.requestId);
            const inserted = await insertDatabase(
              tx,
              {
                id,
                tenant: command.tenant,
                name: command.name.full,
                suffix: command.name.suffix,
                kind: command.kind,
                dataPath: command.dataPath,
                effectiveDataPath: command.effectiveDataPath,
                metastore: command.metastore,
                objectStore: command.objectStore,
                secrets,
                defaultDatabase: command.defaultDatabase,
                defaultSchema: command.defaultSchema,
                status: command.kind === "ducklake" ? "PROVISIONING" : "READY",
                requestId: command.requestId,
              },
              actorOf(ctx),
            );
            // Last, so that nothing after it can fail and replay the callback: the row becomes visible
            // with its lock already held.
            await lockDatabaseName(tx, command.name.full);
            return inserted;
          });
        } catch (err) {
          // A unique clash waited for the other insert to commit, so its row is visible now.
          const first = isUniqueViolation(err) && command.requestId
            ? await findDatabaseByRequestId(conn, command.tenant, command.requestId)
            : null;
          if (!first) throw err; // the name is taken by another request: `exists`
          return repeatOf(conn, ctx, first, command);
        }
        return row.status === "PROVISIONING" ? observed("create", row, () => provision(conn, ctx, row, command)) : row;
      });
    },

    // Settings change in any state: a row left DELETING by a failed drop is fixed this way (new
    // credentials) before the delete is repeated.
    update: (ctx, command) =>
      withLockConnection(async (conn) => {
        const current = await lockedRow(conn, ctx, command);
        if (!current) throw notFound("database");
        if (current.kind === "external") {
          throw invalid([{ field: "name", reason: "invalid_kind", description: "is a Supavisor tenant's upstream: change it with PUT /api/tenants/{external_id}" }]);
        }
        const settings = mergeSettings(
          {
            metastore: current.metastore,
            objectStore: current.object_store,
            secrets: openSecrets(deps.vault, current.id, current.secrets),
            defaultDatabase: current.default_database,
            defaultSchema: current.default_schema,
          },
          current.kind,
          command,
        );
        // A schema the update names goes into the catalog before the row names it (adding one the
        // catalog holds does nothing), with no state transaction open: the name's lock keeps other
        // writers of this row waiting.
        const schemas = [settings.metastore.schemaName ?? "", settings.defaultSchema].filter((s) => s !== "");
        const named = settings.defaultSchema !== current.default_schema || settings.metastore.schemaName !== current.metastore.schemaName;
        if (current.kind === "ducklake" && current.status === "READY" && named && schemas.length > 0) {
          throwIfAborted(ctx);
          await deps.servers.addCatalogSchemas(effectiveTarget(deps.defaults, settings.metastore, settings.secrets), current.name, schemas);
        }
        const changed = {
          metastore: Object.keys(command.metastore),
          objectStore: Object.keys(command.objectStore),
          defaultDatabase: command.defaultDatabase !== undefined,
          defaultSchema: command.defaultSchema !== undefined,
        };
        const sealed = { ...settings, secrets: sealSecrets(deps.vault, current.id, settings.secrets) };
        const updated = await inStatement(conn, ctx, (db) => updateDatabaseSettings(db, current, sealed, changed, actorOf(ctx)));
        if (!updated) throw notFound("database"); // its tenant was deleted meanwhile
        return updated;
      }),

    delete: (ctx, ref) =>
      withLockConnection(async (conn) => {
        let row = await lockedRow(conn, ctx, ref);
        if (!row) throw notFound("database");
        if (isUnsettled(row)) {
          row = await settle(conn, row); // left by a crash or a failed drop: finish or roll back first
          if (!row) return; // a pending drop completed
        }
        // Only a READY ducklake row has a Postgres database of ours (a FAILED one rolled it back).
        if (!ref.dropDatabase || row.status !== "READY" || row.kind !== "ducklake") {
          // Pools reference the row: `has_pools`.
          if (!(await inStatement(conn, ctx, (db) => deleteDatabaseKeepingData(db, row, actorOf(ctx))))) throw notFound("database");
          return;
        }
        const deleting = await inTransaction(conn, ctx, async (tx) => {
          // The row lock keeps new pools out (they take a key-share lock on it) until DELETING commits.
          const locked = await lockDatabaseRow(tx, ref.tenant, ref.name.full);
          if (!locked) throw notFound("database");
          if (await databaseHasPools(tx, locked.id)) throw new AppError("has_pools", "the database has pools; delete them first");
          return markDatabaseDeleting(tx, locked, actorOf(ctx));
        });
        try {
          await observed("delete", deleting, () => settle(conn, deleting));
        } catch (err) {
          if (!(err instanceof AppError)) throw err;
          throw new AppError(err.reason, `${err.message}; the database stays DELETING and the drop will be retried`, err.violations, { cause: err });
        }
      }),

    async ensurePoolRole(role) {
      const row = await findDatabaseById(deps.lockPool, role.databaseId);
      if (!row) throw notFound("database");
      await deps.servers.ensurePoolRole(targetOf(row), row.name, role);
    },

    async dropPoolRole(role) {
      const row = await findDatabaseById(deps.lockPool, role.databaseId);
      if (row) await deps.servers.dropPoolRole(targetOf(row), row.name, role);
    },

    async settleAbandoned(graceMs = RECONCILE_GRACE_MS) {
      let settled = 0;
      for (const candidate of await listUnsettledDatabases(deps.lockPool, graceMs, BATCH)) {
        try {
          // Settles one row if no one else works on it (another replica, a live create or drop).
          // The reconciler's own connection: not through the calls' slots.
          const done = await deps.lockPool.connect(async (conn) => {
            if (!(await tryLockDatabaseName(conn, candidate.name))) return false;
            try {
              const row = await findDatabaseById(conn, candidate.id);
              if (!row || !isUnsettled(row)) return false;
              const after = await settle(conn, row);
              deps.metrics.reconcilerActions.inc({ resource: "database", from: row.status.toLowerCase(), to: (after?.status ?? "deleted").toLowerCase() });
              log.warn({ database: row.name, from: row.status, to: after?.status ?? "deleted" }, "settled a database left by an interrupted operation");
              return true;
            } finally {
              await unlockDatabaseNames(conn);
            }
          });
          if (done) settled++;
        } catch (err) {
          // Typically the tenant server is down: the row stays as it is until a later pass.
          log.warn({ database: candidate.name, reason: (err as { reason?: string }).reason, message: (err as Error).message }, "could not settle a database yet");
        }
      }
      return settled;
    },
  };
}
