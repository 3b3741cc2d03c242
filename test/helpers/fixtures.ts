// Fixtures written straight into a suite's state database, for tests (gRPC and REST alike) that
// need a state the API makes only through slower paths.
import type { DatabasePool } from "slonik";
import { sql } from "../../src/db/sql";
import { newId } from "../../src/ids";

/**
 * A database row with nothing provisioned behind it (READY unless told), so pools can be made on
 * it without provisioning. Returns the database's full name.
 */
export async function insertDatabaseRow(
  pool: DatabasePool,
  tenant: string,
  suffix: string,
  { kind = "memory", status = "READY" }: { kind?: "memory" | "ducklake"; status?: "READY" | "PROVISIONING" } = {},
): Promise<string> {
  const name = `${tenant}_${suffix}`;
  await pool.query(sql.typeAlias("void")`
    INSERT INTO databases (id, tenant, name, suffix, kind, status)
    VALUES (${newId("td")}, ${tenant}, ${name}, ${suffix}, ${kind}, ${status})`);
  return name;
}
