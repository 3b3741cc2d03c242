// Runs a state transaction bounded by the call: never started after cancellation, and its
// statements time out when the client's deadline passes.
import type { CommonQueryMethods, DatabaseTransactionConnection } from "slonik";
import { throwIfAborted } from "../server/middleware/deadline";
import { sql } from "./sql";

export interface CallBounds {
  readonly signal: AbortSignal;
  readonly deadline: number | undefined;
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
  throwIfAborted(bounds.signal);
  return db.transaction(async (tx) => {
    if (bounds.deadline !== undefined) {
      const ms = Math.max(1, Math.floor(bounds.deadline - Date.now()));
      // A SET with its value inlined (a quoted literal of an integer we computed) goes as one
      // simple-protocol message with no result row; set_config($1) cost a parse, bind and row.
      await tx.query(sql.typeAlias("void")`SET LOCAL statement_timeout = ${sql.literalValue(String(ms))}`);
    }
    return work(tx);
  });
}
