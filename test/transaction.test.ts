// How state work is bounded by the call (src/db/transaction.ts, src/db/state.ts): the calls'
// pool's own statement timeout covers a call with time to spare, a nearer deadline is set with
// SET LOCAL, a lone statement runs without BEGIN/COMMIT when nothing needs setting, and the calls'
// pool keeps no session state between calls while the lock pool resets it.
import assert from "node:assert/strict";
import { StatementTimeoutError } from "slonik";
import { z } from "zod";
import { pgUrl } from "../src/db/pool";
import { AppError } from "../src/errors";
import { sql } from "../src/db/sql";
import { CALL_STATEMENT_TIMEOUT_MS, connectState, type StateDatabase } from "../src/db/state";
import type { CallBounds } from "../src/call/deadline";
import { inStatement, inTransaction } from "../src/db/transaction";
import { createTestDatabase, dropDatabase, quietLogger, sharedPostgres } from "./helpers/postgres";

const bounds = (msLeft: number | undefined): CallBounds => ({
  abortReason: undefined,
  deadline: msLeft === undefined ? undefined : Date.now() + msLeft,
});

const Setting = z.object({ timeout: z.string(), in_tx: z.boolean() });
/** The statement timeout in force, and whether the statement runs inside an explicit transaction. */
const settingQuery = sql.type(Setting)`
  SELECT current_setting('statement_timeout') AS timeout,
         transaction_timestamp() <> statement_timestamp() AS in_tx`;
const toMs = (setting: string) => (setting.endsWith("ms") ? Number(setting.slice(0, -2)) : Number(setting.slice(0, -1)) * 1000);

describe("state work bounded by the call", () => {
  let database: string;
  let state: StateDatabase;

  before(async () => {
    database = await createTestDatabase();
    state = await connectState(pgUrl(sharedPostgres().target, database), quietLogger, 4);
  });
  after(async () => {
    await state?.end();
    await dropDatabase(sharedPostgres(), database);
  });

  it("leaves a call with more time than the pool's statement timeout to that timeout, without a transaction", async () => {
    for (const left of [undefined, CALL_STATEMENT_TIMEOUT_MS + 5_000]) {
      const row = await inStatement(state.pool, bounds(left), (db) => db.one(settingQuery));
      assert.equal(toMs(row.timeout), CALL_STATEMENT_TIMEOUT_MS);
      assert.equal(row.in_tx, false, "no BEGIN before a lone statement");
    }
  });

  it("sets a nearer deadline with SET LOCAL, in a transaction, for that transaction only", async () => {
    const row = await inStatement(state.pool, bounds(2_000), (db) => db.one(settingQuery));
    assert.ok(toMs(row.timeout) <= 2_000 && toMs(row.timeout) > 1_000, row.timeout);
    assert.equal(row.in_tx, true);
    const inTx = await inTransaction(state.pool, bounds(3_000), (tx) => tx.one(settingQuery));
    assert.ok(toMs(inTx.timeout) <= 3_000, inTx.timeout);
    // The same connections afterwards are back to the pool's timeout.
    const after = await Promise.all(Array.from({ length: 4 }, () => state.pool.one(settingQuery)));
    for (const r of after) assert.equal(toMs(r.timeout), CALL_STATEMENT_TIMEOUT_MS);
  });

  it("stops a statement when the deadline passes", async () => {
    const started = Date.now();
    await assert.rejects(
      inStatement(state.pool, bounds(300), (db) => db.query(sql.typeAlias("void")`SELECT FROM pg_sleep(5)`)),
      (err: unknown) => err instanceof StatementTimeoutError,
    );
    assert.ok(Date.now() - started < 2_000);
  });

  it("always bounds a lone connection, whose own timeout it cannot see", async () => {
    const row = await state.lockPool.connect((conn) => inTransaction(conn, bounds(30_000), (tx) => tx.one(settingQuery)));
    assert.ok(toMs(row.timeout) <= 30_000, row.timeout);
  });

  it("refuses a second statement in inStatement, before sending it, with or without a transaction", async () => {
    for (const msLeft of [undefined, 300]) {
      let sent = 0;
      await assert.rejects(
        inStatement(state.pool, bounds(msLeft), async (db) => {
          await db.one(settingQuery);
          sent++;
          await db.one(settingQuery);
          sent++;
        }),
        /exactly one statement/,
      );
      assert.equal(sent, 1);
    }
  });

  it("does not start work for a call already cancelled", async () => {
    let ran = false;
    const cancelled = new AppError("cancelled", "the call was cancelled");
    await assert.rejects(inStatement(state.pool, { abortReason: cancelled, deadline: undefined }, async () => (ran = true)), cancelled);
    assert.equal(ran, false);
  });

  it("resets lock connections on release: an advisory lock never outlives its work", async () => {
    const Locks = z.object({ n: z.number() });
    const heldLocks = sql.type(Locks)`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()`;
    await state.lockPool.connect((conn) => conn.query(sql.typeAlias("void")`SELECT FROM pg_advisory_lock(42)`));
    const afterLock = await Promise.all(Array.from({ length: 3 }, () => state.lockPool.connect((conn) => conn.oneFirst(heldLocks))));
    assert.deepEqual(afterLock.filter((n) => n > 0), []);
    assert.equal(state.lockSlots, 2);
  });
});
