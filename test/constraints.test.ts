// The state schema against the code: every constraint (and the unique indexes and trigger that
// act as one) has an entry in db/errors.ts, and each CHECK over a closed set allows exactly the
// values of that set's one TypeScript source.
import assert from "node:assert/strict";
import { z } from "zod";
import { ROLES } from "../src/call/principal";
import { KINDS, STATUSES } from "../src/databases/rows";
import { CONSTRAINTS } from "../src/db/errors";
import { createPool, pgUrl } from "../src/db/pool";
import { sql } from "../src/db/sql";
import { AUTH_PROVIDERS } from "../src/tenants/rows";
import { createTestDatabase, dropDatabase, quietLogger, sharedPostgres } from "./helpers/postgres";

const Named = z.object({ name: z.string(), definition: z.string() });

describe("state schema constraints", () => {
  let database: string;
  let constraints: readonly z.infer<typeof Named>[];

  before(async () => {
    database = await createTestDatabase();
    const pool = await createPool(pgUrl(sharedPostgres().target, database), quietLogger, { maximumPoolSize: 1 });
    try {
      constraints = await pool.any(sql.type(Named)`
        SELECT c.conname AS name, pg_get_constraintdef(c.oid) AS definition
        FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE n.nspname = 'public' AND t.relname <> 'schema_migrations'
        UNION ALL
        SELECT i.relname, pg_get_indexdef(i.oid)
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_namespace n ON n.oid = i.relnamespace
        WHERE n.nspname = 'public' AND x.indisunique AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid)
          AND i.relname NOT LIKE 'schema_migrations%'
        UNION ALL
        SELECT tg.tgname, pg_get_triggerdef(tg.oid)
        FROM pg_trigger tg WHERE NOT tg.tgisinternal AND pg_get_triggerdef(tg.oid) LIKE '%refuse%'`);
    } finally {
      await pool.end();
    }
  });
  after(() => dropDatabase(sharedPostgres(), database));

  it("maps every constraint to a reason (or marks it as one no request can break)", () => {
    const missing = constraints.map((c) => c.name).filter((name) => !Object.hasOwn(CONSTRAINTS, name));
    assert.deepEqual(missing, []);
    const stale = Object.keys(CONSTRAINTS).filter((name) => !constraints.some((c) => c.name === name));
    assert.deepEqual(stale, [], "entries in db/errors.ts for constraints that no longer exist");
  });

  const closedSets: [string, readonly string[]][] = [
    ["tenants_auth_provider_check", AUTH_PROVIDERS],
    ["databases_kind_check", KINDS],
    ["databases_status_check", STATUSES],
    ["users_role_check", ROLES],
  ];
  for (const [name, values] of closedSets) {
    it(`${name} allows exactly ${values.join(", ")}`, () => {
      const definition = constraints.find((c) => c.name === name)?.definition ?? "";
      const allowed = [...definition.matchAll(/'([^']*)'::text/g)].map((m) => m[1]);
      assert.deepEqual([...allowed].sort(), [...values].sort(), definition);
    });
  }
});
