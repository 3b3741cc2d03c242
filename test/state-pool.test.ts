// The state pool skips slonik's DISCARD ALL on release (src/db/state.ts), which is only right while
// nothing leaves session state on its connections. These tests hold that line.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import { createPool, pgUrl } from "../src/db/pool";
import { sql } from "../src/db/sql";
import { statePoolOptions } from "../src/db/state";
import { inTransaction } from "../src/db/transaction";
import { quietLogger, sharedPostgres } from "./helpers/postgres";

const SRC = path.join(__dirname, "..", "src");

function sourcesRunningOnTheStatePool(dir = SRC): string[] {
  return readdirSync(dir).flatMap((name) => {
    const file = path.join(dir, name);
    if (statSync(file).isDirectory()) return sourcesRunningOnTheStatePool(file);
    return name === "queries.ts" || file === path.join(SRC, "db", "transaction.ts") ? [file] : [];
  });
}

/** Statements that outlive their transaction on a connection. */
const SESSION_STATE: Array<[string, RegExp]> = [
  ["a session SET (use SET LOCAL or set_config(…, true))", /`\s*SET\s+(?!LOCAL\b)/i],
  ["set_config(…, false)", /set_config\([^)]*,\s*false\s*\)/i],
  ["a session advisory lock (use pg_advisory_xact_lock)", /pg_(try_)?advisory_lock(_shared)?\s*\(/i],
  ["a temporary table", /CREATE\s+(GLOBAL\s+|LOCAL\s+)?TEMP(ORARY)?\s/i],
  ["LISTEN", /`\s*LISTEN\s/i],
  ["a named prepared statement or cursor", /`\s*(PREPARE|DECLARE)\s/i],
];

describe("state pool without DISCARD ALL", () => {
  it("runs on sources that leave no session state behind", () => {
    const files = sourcesRunningOnTheStatePool();
    assert.ok(files.length >= 3, "found the queries.ts files");
    for (const file of files) {
      const text = readFileSync(file, "utf8");
      for (const [what, pattern] of SESSION_STATE) {
        assert.doesNotMatch(text, pattern, `${path.relative(SRC, file)} leaves ${what} on a pooled connection`);
      }
    }
  });

  it("gets statement_timeout back after a deadline-bounded transaction on the same connection", async () => {
    const pool = await createPool(pgUrl(sharedPostgres().target, "postgres"), quietLogger, statePoolOptions(1));
    try {
      const show = () => pool.oneFirst(sql.type(z.object({ statement_timeout: z.string() }))`SHOW statement_timeout`);
      const before = await show();
      const inside = await inTransaction(pool, { signal: new AbortController().signal, deadline: Date.now() + 5_000 }, (tx) =>
        tx.oneFirst(sql.type(z.object({ statement_timeout: z.string() }))`SHOW statement_timeout`),
      );
      assert.notEqual(inside, before, "the transaction bounded its statements");
      assert.equal(await show(), before);
    } finally {
      await pool.end();
    }
  });

  it("skips DISCARD ALL only when asked (session state survives a release), and reuses the connection", async () => {
    const sessionSetting = async (options: { discardOnRelease?: boolean }) => {
      const pool = await createPool(pgUrl(sharedPostgres().target, "postgres"), quietLogger, { maximumPoolSize: 1, ...options });
      try {
        const pid = () => pool.oneFirst(sql.type(z.object({ pid: z.number() }))`SELECT pg_backend_pid() AS pid`);
        const first = await pid();
        await pool.query(sql.type(z.object({ set_config: z.string() }))`SELECT set_config('application_name', 'left-behind', false)`);
        const setting = await pool.oneFirst(sql.type(z.object({ application_name: z.string() }))`SHOW application_name`);
        assert.equal(await pid(), first, "one connection, reused");
        return setting;
      } finally {
        await pool.end();
      }
    };
    assert.notEqual(await sessionSetting({}), "left-behind");
    assert.equal(await sessionSetting({ discardOnRelease: false }), "left-behind");
  });
});
