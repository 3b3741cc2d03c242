// Runs a state transaction bounded by the call: never started after cancellation, and its
// statements time out when the client's deadline passes.
import { z } from "zod";
import type { CommonQueryMethods, DatabaseTransactionConnection } from "slonik";
import { throwIfAborted } from "../server/middleware/deadline";
import { sql } from "./sql";

export interface CallBounds {
  readonly signal: AbortSignal;
  readonly deadline: number | undefined;
}

const SetConfig = z.object({ set_config: z.string() });

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
      await tx.one(sql.type(SetConfig)`SELECT set_config('statement_timeout', ${String(ms)}, true)`);
    }
    return work(tx);
  });
}
