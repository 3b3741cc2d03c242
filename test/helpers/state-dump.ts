// A dump of the state tables, to prove a rejected request changed nothing. login_failures is
// left out: counting a refused login is its purpose.
import type { DatabasePool } from "slonik";
import { z } from "zod";
import { sql } from "../../src/db/sql";

export const STATE_TABLES = ["tenants", "databases", "pools", "users", "access_tokens", "revoked_tokens", "audit_log"] as const;

const Dump = z.object({ dump: z.string() });

/** Every row of every state table, as one text, in a stable order. */
export async function dumpState(pool: DatabasePool): Promise<string> {
  const parts = STATE_TABLES.map(
    (table) => sql.fragment`(SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY to_jsonb(t)::text), '[]'::jsonb) FROM ${sql.identifier([table])} t)`,
  );
  const keyed = STATE_TABLES.flatMap((table, i) => [sql.fragment`${table}::text`, parts[i]]);
  return pool.oneFirst(sql.type(Dump)`SELECT jsonb_build_object(${sql.join(keyed, sql.fragment`, `)})::text AS dump`);
}
