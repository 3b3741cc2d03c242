// Fixtures written straight into a suite's state database, for tests that need a state the API
// makes only through slower paths.
import type { DatabasePool } from "slonik";
import { sql } from "../../src/db/sql";
import { newId } from "../../src/ids";

/** A READY `memory` database row (nothing to provision), returning its full name. */
export async function insertReadyDatabase(pool: DatabasePool, tenant: string, suffix: string): Promise<string> {
  const name = `${tenant}_${suffix}`;
  await pool.query(sql.typeAlias("void")`
    INSERT INTO databases (id, tenant, name, suffix, kind, status)
    VALUES (${newId("td")}, ${tenant}, ${name}, ${suffix}, 'memory', 'READY')`);
  return name;
}
