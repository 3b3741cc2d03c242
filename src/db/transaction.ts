// Runs state work bounded by the call: never started after cancellation, and its statements time
// out when the client's deadline passes (or sooner, at the pool's own statement timeout).
import type { CommonQueryMethods, DatabasePool, DatabaseTransactionConnection } from "slonik";
import type { CallContext } from "../server/context";
import { throwIfAborted } from "../server/middleware/deadline";
import { sql } from "./sql";

export type CallBounds = Pick<CallContext, "abortReason" | "deadline">;

/**
 * Milliseconds a statement of this call may still run, when that is shorter than what `db`
 * already allows: a pool states its statement timeout, a lone connection does not (so a
 * connection is always bounded explicitly). Undefined when nothing needs setting.
 */
function timeLeftToSet(db: CommonQueryMethods, bounds: CallBounds): number | undefined {
  if (bounds.deadline === undefined) return undefined;
  const ms = Math.max(1, Math.floor(bounds.deadline - Date.now()));
  const poolTimeout = (db as Partial<DatabasePool>).configuration?.statementTimeout;
  return typeof poolTimeout === "number" && ms >= poolTimeout ? undefined : ms;
}

/**
 * The callback must hold only SQL: slonik may run it again on a serialization failure. `db` is
 * a pool or one connection taken from it (to keep session state such as advisory locks).
 */
export async function inTransaction<T>(
  db: CommonQueryMethods,
  bounds: CallBounds,
  work: (tx: DatabaseTransactionConnection) => Promise<T>,
): Promise<T> {
  throwIfAborted(bounds);
  return db.transaction(async (tx) => {
    const ms = timeLeftToSet(db, bounds);
    // A SET with its value inlined (a quoted literal of an integer we computed) goes as one
    // simple-protocol message with no result row; set_config($1) cost a parse, bind and row.
    if (ms !== undefined) await tx.query(sql.typeAlias("void")`SET LOCAL statement_timeout = ${sql.literalValue(String(ms))}`);
    return work(tx);
  });
}

/**
 * One statement bounded like inTransaction. A single statement is atomic on its own, so it runs
 * without BEGIN and COMMIT (one round trip instead of three) unless the deadline is nearer than
 * the pool's statement timeout and has to be set in a transaction. `run` must send exactly one
 * statement.
 */
export async function inStatement<T>(db: CommonQueryMethods, bounds: CallBounds, run: (db: CommonQueryMethods) => Promise<T>): Promise<T> {
  throwIfAborted(bounds);
  return timeLeftToSet(db, bounds) === undefined ? run(db) : inTransaction(db, bounds, run);
}
