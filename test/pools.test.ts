import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { z } from "zod";
import { sql } from "../src/db/sql";
import { startTestApp, type TestApp } from "./helpers/app";
import { expectError } from "./helpers/clients";
import { insertDatabaseRow } from "./helpers/fixtures";
import { uniquePrefix } from "./helpers/postgres";

describe("PoolService", () => {
  let app: TestApp;
  const tenant = uniquePrefix("pool");
  const poolCount = async () => app.pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*)::int AS n FROM pools`);

  before(async () => {
    app = await startTestApp();
    await app.clients.tenants.createTenant({ name: tenant });
    await insertDatabaseRow(app.pool, tenant, "sales");
    await insertDatabaseRow(app.pool, tenant, "ops");
  });
  after(async () => {
    await app.stop();
  });

  it("registers a pool on a database named by suffix or full name, with upstream's field names", async () => {
    const pool = await app.clients.pools.createPool({ tenant, tenantDb: "sales", pool: "bi", size: 2 });
    assert.equal(pool?.tenant, tenant);
    assert.equal(pool?.tenantDb, `${tenant}_sales`);
    assert.equal(pool?.pool, "bi");
    assert.equal(pool?.size, 2);
    assert.match(pool?.id ?? "", /^p-[0-9a-f]{32}$/);
    const full = await app.clients.pools.createPool({ tenant, tenantDb: `${tenant}_ops`, pool: "etl" });
    assert.equal(full.tenantDb, `${tenant}_ops`);
    assert.equal(full.size, 1, "size 0 means 1");
  });

  it("shows pool names on the tenant, sorted", async () => {
    const t = await app.clients.tenants.getTenant({ name: tenant });
    assert.deepEqual(t?.pools, ["bi", "etl"]);
  });

  it("answers ALREADY_EXISTS for a duplicate pool name in the tenant", async () => {
    await expectError(app.clients.pools.createPool({ tenant, tenantDb: "ops", pool: "bi" }), status.ALREADY_EXISTS, "exists");
  });

  it("answers NOT_FOUND for a missing database or tenant, and for deleting a missing pool", async () => {
    await expectError(app.clients.pools.createPool({ tenant, tenantDb: "nope", pool: "x" }), status.NOT_FOUND, "not_found");
    await expectError(app.clients.pools.createPool({ tenant: `${tenant}_none`, tenantDb: "nope", pool: "x" }), status.NOT_FOUND, "not_found");
    await expectError(app.clients.pools.deletePool({ tenant, pool: "nope" }), status.NOT_FOUND, "not_found");
  });

  it("refuses a database that is not READY", async () => {
    await app.pool.query(sql.typeAlias("void")`UPDATE databases SET status = 'PROVISIONING' WHERE name = ${`${tenant}_ops`}`);
    try {
      await expectError(app.clients.pools.createPool({ tenant, tenantDb: "ops", pool: "late" }), status.INVALID_ARGUMENT, "invalid_tenant_db");
    } finally {
      await app.pool.query(sql.typeAlias("void")`UPDATE databases SET status = 'READY' WHERE name = ${`${tenant}_ops`}`);
    }
  });

  describe("validation: field violations, nothing stored", () => {
    const cases: [string, Record<string, unknown>, string, string][] = [
      ["bad pool name", { tenantDb: "sales", pool: "Bad-Name" }, "pool", "invalid_name"],
      ["SQL in pool name", { tenantDb: "sales", pool: "x'); DELETE FROM pools; --" }, "pool", "invalid_name"],
      ["empty pool name", { tenantDb: "sales", pool: "" }, "pool", "invalid_name"],
      ["bad database name", { tenantDb: "sa les", pool: "ok" }, "tenant_db", "invalid_name"],
      ["over-long database name", { tenantDb: "d".repeat(64), pool: "ok" }, "tenant_db", "invalid_name"],
      ["size above 64", { tenantDb: "sales", pool: "ok", size: 65 }, "size", "invalid_size"],
      ["negative size", { tenantDb: "sales", pool: "ok", size: -1 }, "size", "invalid_size"],
    ];
    for (const [label, request, field, reason] of cases) {
      it(`rejects ${label}`, async () => {
        const before = await poolCount();
        const err = await expectError(app.clients.pools.createPool({ tenant, ...request }), status.INVALID_ARGUMENT, reason);
        assert.ok(err.violations.some((v) => v.field === field), JSON.stringify(err.violations));
        assert.equal(await poolCount(), before);
      });
    }
  });

  it("lists a tenant's pools in name order, paginated", async () => {
    const first = await app.clients.pools.listPools({ tenant, pageSize: 1 });
    assert.deepEqual(first.pools.map((p) => p.pool), ["bi"]);
    const second = await app.clients.pools.listPools({ tenant, pageSize: 1, pageToken: first.nextPageToken });
    assert.deepEqual(second.pools.map((p) => p.pool), ["etl"]);
    assert.equal(second.nextPageToken, "");
    await expectError(app.clients.pools.listPools({ tenant: `${tenant}x`, pageToken: first.nextPageToken }), status.INVALID_ARGUMENT, "invalid_page_token");
  });

  it("marks pools disabled when their tenant is disabled", async () => {
    await app.clients.tenants.setTenantDisabled({ name: tenant, disabled: true });
    const { pools } = await app.clients.pools.listPools({ tenant });
    assert.ok(pools.every((p) => p.disabled));
    await app.clients.tenants.setTenantDisabled({ name: tenant, disabled: false });
  });

  it("blocks tenant delete with has_pools while pools exist, then deletes once they are gone", async () => {
    const err = await expectError(app.clients.tenants.deleteTenant({ name: tenant }), status.ABORTED, "has_pools");
    assert.doesNotMatch(err.message, /constraint|violates|pools_/i);
    assert.ok((await app.clients.tenants.getTenant({ name: tenant })), "nothing was deleted");
    await app.clients.pools.deletePool({ tenant, pool: "bi" });
    await app.clients.pools.deletePool({ tenant, pool: "etl" });
    await app.clients.tenants.deleteTenant({ name: tenant });
    const rows = await app.pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*)::int AS n FROM databases WHERE tenant = ${tenant}`);
    assert.equal(rows, 0, "the tenant's database rows went with it");
  });

  it("never lets a pool outlive its database when a create races a delete", async () => {
    const t = uniquePrefix("race");
    await app.clients.tenants.createTenant({ name: t });
    await insertDatabaseRow(app.pool, t, "db");
    const results = await Promise.allSettled([
      app.clients.pools.createPool({ tenant: t, tenantDb: "db", pool: "p" }),
      app.clients.tenants.deleteTenant({ name: t }),
    ]);
    const orphans = await app.pool.oneFirst(sql.type(z.object({ n: z.number() }))`
      SELECT count(*)::int AS n FROM pools p LEFT JOIN databases d ON d.id = p.database_id WHERE d.id IS NULL`);
    assert.equal(orphans, 0);
    assert.ok(results.some((r) => r.status === "fulfilled"));
  });
});
