// A digest of the state tables, to prove a rejected request changed nothing. login_failures is
// left out (counting a refused login is its purpose), and so is access_tokens.last_used_at
// (authenticating with a token stamps its use, at most once a minute, whatever the call's outcome).
import type { DatabasePool } from "slonik";
import { z } from "zod";
import { sql } from "../../src/db/sql";

export const STATE_TABLES = ["tenants", "databases", "pools", "users", "access_tokens", "revoked_tokens", "audit_log"] as const;
const UNCOUNTED_COLUMNS: Partial<Record<(typeof STATE_TABLES)[number], string>> = { access_tokens: "last_used_at" };

const Dump = z.object({ dump: z.string() });

/** `{"table": "<md5 of its rows>", …}`, computed in Postgres: equal texts mean equal rows in every table. */
export async function dumpState(pool: DatabasePool): Promise<string> {
  const digests = STATE_TABLES.flatMap((table) => {
    const row = sql.fragment`(to_jsonb(t) - ${UNCOUNTED_COLUMNS[table] ?? ""}::text)::text`;
    return [
      sql.fragment`${table}::text`,
      sql.fragment`(SELECT md5(coalesce(string_agg(${row}, '|' ORDER BY ${row}), '')) FROM ${sql.identifier([table])} t)`,
    ];
  });
  return pool.oneFirst(sql.type(Dump)`SELECT jsonb_build_object(${sql.join(digests, sql.fragment`, `)})::text AS dump`);
}
