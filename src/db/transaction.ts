// Runs state work bounded by the call: never started after cancellation, and its statements time
// out when the client's deadline passes (or sooner, at the pool's own statement timeout).
import type { CommonQueryMethods, DatabasePool, DatabaseTransactionConnection, QuerySqlToken } from "slonik";
import type { ZodTypeAny } from "zod";
import { throwIfAborted, type CallBounds } from "../call/deadline";
import { sql } from "./sql";

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

/** The query methods of one statement: what inStatement hands its callback. */
export type OneStatement = Pick<CommonQueryMethods, "one" | "maybeOne" | "any" | "query">;

/**
 * `db`, answering exactly one statement: a second one throws before it is sent, so the
 * one-statement contract of inStatement holds whatever its callback does.
 */
function oneStatementOf(db: CommonQueryMethods): OneStatement {
  let used = false;
  const once = <Q extends QuerySqlToken<ZodTypeAny>>(query: Q): Q => {
    if (used) throw new Error("inStatement runs exactly one statement; use inTransaction for more");
    used = true;
    return query;
  };
  return {
    one: (query) => db.one(once(query)),
    maybeOne: (query) => db.maybeOne(once(query)),
    any: (query) => db.any(once(query)),
    query: (query) => db.query(once(query)),
  };
}

/**
 * One statement bounded like inTransaction. A single statement is atomic on its own, so it runs
 * without BEGIN and COMMIT (one round trip instead of three) unless the deadline is nearer than
 * the pool's statement timeout and has to be set in a transaction.
 */
export async function inStatement<T>(db: CommonQueryMethods, bounds: CallBounds, run: (db: OneStatement) => Promise<T>): Promise<T> {
  throwIfAborted(bounds);
  return timeLeftToSet(db, bounds) === undefined ? run(oneStatementOf(db)) : inTransaction(db, bounds, (tx) => run(oneStatementOf(tx)));
}
