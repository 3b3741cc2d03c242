// Fixtures written straight into a suite's state database, for tests (gRPC and REST alike) that
// need a state the API makes only through slower paths.
import type { DatabasePool } from "slonik";
import { sql } from "../../src/db/sql";
import { newId } from "../../src/ids";
import { sharedPostgres } from "./postgres";

/**
 * A database row (READY unless told) without provisioning: for a READY ducklake row an empty
 * Postgres database of its name is made on the run's server (pools make their roles there), with
 * no catalog. Returns the database's full name.
 */
export async function insertDatabaseRow(
  pool: DatabasePool,
  tenant: string,
  suffix: string,
  { kind = "ducklake", status = "READY" }: { kind?: "memory" | "ducklake"; status?: "READY" | "PROVISIONING" } = {},
): Promise<string> {
  const name = `${tenant}_${suffix}`;
  if (kind === "ducklake" && status === "READY") {
    await sharedPostgres().admin.query(sql.typeAlias("void")`CREATE DATABASE ${sql.identifier([name])} TEMPLATE template0`);
  }
  await pool.query(sql.typeAlias("void")`
    INSERT INTO databases (id, tenant, name, suffix, kind, status)
    VALUES (${newId("td")}, ${tenant}, ${name}, ${suffix}, ${kind}, ${status})`);
  return name;
}
