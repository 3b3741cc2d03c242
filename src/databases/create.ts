// CreateDatabase: record PROVISIONING (taking the name's lock) → provision → READY or FAILED.
// See reconcile.ts for the lock scheme and what a crash between the steps leaves.
import { UniqueIntegrityConstraintViolationError } from "slonik";
import { insertAudit } from "../audit/queries";
import type { CommonQueryMethods } from "../db/sql";
import { inTransaction } from "../db/transaction";
import { AppError, invalid, notFound, type Reason } from "../errors";
import { newId } from "../ids";
import type { AuthedContext } from "../server/context";
import { throwIfAborted } from "../server/middleware/deadline";
import { CREATED_BY, effectiveTarget } from "./provision";
import {
  deleteFailedDatabases,
  findDatabaseById,
  findDatabaseByRequestId,
  insertDatabase,
  lockDatabaseName,
  markDatabaseReady,
  markProvisioningStarted,
} from "./queries";
import { isUnsettled, settle, type LifecycleDeps } from "./reconcile";
import type { DatabaseRow } from "./rows";
import type { CreateDatabaseCommand } from "./validate";
import { sealSecrets } from "./vault";

/** Runs `work` on one state connection of its own, which holds the advisory locks it takes. */
export type WithLockConnection = <T>(work: (conn: CommonQueryMethods) => Promise<T>) => Promise<T>;

/** A settled row as the answer to its create: the database when READY, the first attempt's error when FAILED. */
function outcome(row: DatabaseRow | null): DatabaseRow {
  if (row?.status === "READY") return row;
  // status_reason is always written from an AppError's reason.
  if (row?.status === "FAILED") throw new AppError((row.status_reason || "unavailable") as Reason, row.status_message);
  throw notFound("database");
}

/**
 * A create whose requestId was already used: wait until the first attempt is over (its lock is
 * free), then answer what it got. A create of another name with the same requestId is an error.
 */
async function repeatOf(deps: LifecycleDeps, conn: CommonQueryMethods, ctx: AuthedContext, first: DatabaseRow, command: CreateDatabaseCommand): Promise<DatabaseRow> {
  if (first.name !== command.name.full) {
    throw invalid([{ field: "request_id", reason: "invalid_request_id", description: "was already used to create another database" }]);
  }
  await inTransaction(conn, ctx, (tx) => lockDatabaseName(tx, first.name));
  const row = await findDatabaseById(conn, first.id);
  // Still unsettled under the lock: the first attempt's process died; finish its work here.
  return outcome(row && isUnsettled(row) ? await settle(deps, conn, row) : row);
}

/** Makes the Postgres database and its catalog; on failure rolls back what was made (or finds it all made). */
async function provision(deps: LifecycleDeps, conn: CommonQueryMethods, ctx: AuthedContext, row: DatabaseRow, command: CreateDatabaseCommand): Promise<DatabaseRow> {
  const target = effectiveTarget(deps.defaults, command.metastore, command.secrets);
  try {
    throwIfAborted(ctx); // never start provisioning after cancellation
    // Someone else's database (or one kept by an earlier delete) is never adopted nor dropped.
    if (await deps.servers.databaseExists(target, row.name)) {
      throw new AppError("exists", "a Postgres database with this name already exists on its server");
    }
    await deps.servers.createDatabase(target, row.name, async () => {
      // Proves our session, and so our lock, is alive, and marks the database as ours from here on.
      if (!(await markProvisioningStarted(conn, row.id))) throw new Error(`database row ${row.id} left PROVISIONING under its lock`);
    });
    await deps.servers.writeCatalog(target, row.name, {
      dataPath: command.effectiveDataPath,
      encrypted: false,
      createdBy: CREATED_BY,
      schemas: [command.metastore.schemaName ?? "", command.defaultSchema].filter((s) => s !== ""),
    });
  } catch (failure) {
    if (!(failure instanceof AppError)) throw failure; // servers and the signal throw only AppErrors; the reconciler settles after a bug
    // Reading our row first proves the session (and lock) is still ours; if it is not, the
    // reconciler settles the row and we must not touch the server.
    const current = await findDatabaseById(conn, row.id);
    const settled = current && (await settle(deps, conn, current, failure));
    if (settled?.status === "READY") return settled; // the catalog did commit; only its answer was lost
    throw failure;
  }
  const ready = await markDatabaseReady(conn, row.id);
  if (!ready) throw new Error(`database row ${row.id} left PROVISIONING under its lock`);
  return ready;
}

export async function createDatabase(deps: LifecycleDeps, withLockConnection: WithLockConnection, ctx: AuthedContext, command: CreateDatabaseCommand): Promise<DatabaseRow> {
  const id = newId("td");
  const secrets = sealSecrets(deps.vault, id, command.secrets);
  return withLockConnection(async (conn) => {
    let row: DatabaseRow;
    try {
      row = await inTransaction(conn, ctx, async (tx) => {
        await deleteFailedDatabases(tx, command.tenant, command.name.full, command.requestId);
        const inserted = await insertDatabase(tx, {
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
        });
        await insertAudit(tx, ctx, { action: "database.create", tenant: command.tenant, target: command.name.full, details: { kind: command.kind } });
        // Last, so that nothing after it can fail and replay the callback: the row becomes visible
        // with its lock already held.
        await lockDatabaseName(tx, command.name.full);
        return inserted;
      });
    } catch (err) {
      // A unique clash waited for the other insert to commit, so its row is visible now.
      const first = err instanceof UniqueIntegrityConstraintViolationError && command.requestId
        ? await findDatabaseByRequestId(conn, command.tenant, command.requestId)
        : null;
      if (!first) throw err; // the name is taken by another request: `exists`
      return repeatOf(deps, conn, ctx, first, command);
    }
    return row.status === "PROVISIONING" ? provision(deps, conn, ctx, row, command) : row;
  });
}
