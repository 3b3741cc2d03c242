// Migrations are safe when replicas start together (graphile/worker's test): 20 migrators at once
// on a fresh database all succeed, and the migrations run once.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdirSync } from "node:fs";
import { z } from "zod";
import { migrate, MIGRATIONS_DIR } from "../src/db/migrate";
import { createPool, pgUrl } from "../src/db/pool";
import { sql } from "../src/db/sql";
import { dropDatabase, quietLogger, sharedPostgres } from "./helpers/postgres";

describe("migrations", function () {
  this.timeout(120_000);
  const database = `qod_test_migrate_${randomBytes(4).toString("hex")}`;
  after(() => dropDatabase(sharedPostgres(), database));

  it("run once when 20 migrators start at the same time on a fresh database", async () => {
    await sharedPostgres().admin.query(sql.typeAlias("void")`CREATE DATABASE ${sql.identifier([database])}`);
    const url = pgUrl(sharedPostgres().target, database);
    const runs = await Promise.all(Array.from({ length: 20 }, () => migrate(url, quietLogger)));
    const files = readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith(".sql")).map((f) => f.replace(/\.sql$/, "")).sort();
    const applied = runs.filter((names) => names.length > 0);
    assert.equal(applied.length, 1, "exactly one migrator applied the migrations");
    assert.deepEqual(applied[0], files);
    const pool = await createPool(url, quietLogger, { maximumPoolSize: 1 });
    try {
      const rows = await pool.any(sql.type(z.object({ name: z.string() }))`SELECT name FROM schema_migrations ORDER BY name`);
      assert.deepEqual(rows.map((r) => r.name), files, "each migration is recorded once");
    } finally {
      await pool.end();
    }
  });
});
