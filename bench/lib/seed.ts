// Seeds the state tables straight with INSERT … SELECT generate_series, so big tables cost seconds,
// not hours of API calls. Names are bench_t_00000 … (zero-padded, so name order = number order).
import type { DatabasePool } from "slonik";
import { z } from "zod";
import { sql } from "../../src/db/sql";

export const tenantName = (n: number): string => `bench_t_${String(n).padStart(5, "0")}`;

const voidQuery = sql.typeAlias("void");

/** Tenants number `from` to `to - 1` (auth provider db, no config). */
export async function seedTenants(pool: DatabasePool, from: number, to: number): Promise<void> {
  await pool.query(voidQuery`
    INSERT INTO tenants (name, display_name)
    SELECT format('bench_t_%s', lpad(g::text, 5, '0')), format('Bench tenant %s', g)
    FROM generate_series(${from}::int, ${to - 1}::int) AS g`);
  await pool.query(voidQuery`ANALYZE tenants`);
}

/**
 * `count` READY rows of kind memory (no Postgres database behind them), spread round-robin over
 * tenants 0 … tenants-1; row g belongs to tenant g % tenants and is named `<tenant>_db<g>`.
 */
export async function seedDatabases(pool: DatabasePool, count: number, tenants: number): Promise<void> {
  await pool.query(voidQuery`
    INSERT INTO databases (id, tenant, name, suffix, kind, status)
    SELECT 'td-' || md5('bench' || g), t.name, t.name || '_db' || g, 'db' || g, 'memory', 'READY'
    FROM generate_series(0, ${count - 1}::int) AS g
    CROSS JOIN LATERAL (SELECT format('bench_t_%s', lpad((g % ${tenants}::int)::text, 5, '0')) AS name) AS t`);
  await pool.query(voidQuery`ANALYZE databases`);
}

export function countRows(pool: DatabasePool, table: "tenants" | "databases" | "audit_log", where = sql.fragment`TRUE`): Promise<number> {
  return pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*)::int AS n FROM ${sql.identifier([table])} WHERE ${where}`);
}
