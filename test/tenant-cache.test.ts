// GetTenant's cache (src/tenants/cache.ts) never shows a replica's own change stale, follows
// other replicas' and hand-written SQL changes through Postgres notifications, and caches
// nothing while its notification connection is down.
import assert from "node:assert/strict";
import { z } from "zod";
import { sql } from "../src/db/sql";
import { TENANT_CHANNEL } from "../src/tenants/cache";
import { startTestApp, type TestApp } from "./helpers/app";
import { insertDatabaseRow } from "./helpers/fixtures";
import { uniquePrefix } from "./helpers/postgres";
import { eventually } from "./helpers/wait";

describe("GetTenant's cache", () => {
  let a: TestApp;
  let b: TestApp;
  const tenant = uniquePrefix("cache");
  const displayName = async (app: TestApp) => (await app.clients.tenants.getTenant({ name: tenant })).displayName;
  const listeners = async () =>
    a.pool.oneFirst(sql.type(z.object({ n: z.number() }))`
      SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'qod listener'`);

  before(async () => {
    a = await startTestApp();
    b = await a.replica();
    await a.clients.tenants.createTenant({ name: tenant, displayName: "first" });
    await eventually(listeners, (n) => n === 2);
  });
  after(async () => {
    await b?.stop();
    await a?.stop();
  });

  it("shows a replica's own changes at once, every time", async () => {
    await displayName(a); // cached
    for (const disabled of [true, false, true, false]) {
      await a.clients.tenants.setTenantDisabled({ name: tenant, disabled });
      assert.equal((await a.clients.tenants.getTenant({ name: tenant })).disabled, disabled);
    }
  });

  it("follows another replica's change within moments, and never goes back to the old value", async () => {
    for (const name of ["second", "third", "fourth"]) {
      await displayName(b); // b has the tenant cached
      await a.pool.query(sql.typeAlias("void")`UPDATE tenants SET display_name = ${name} WHERE name = ${tenant}`);
      assert.equal(await eventually(() => displayName(b), (v) => v === name, { timeoutMs: 2_000 }), name);
      for (let i = 0; i < 20; i++) assert.equal(await displayName(b), name);
    }
  });

  it("follows pools created and deleted on another replica", async () => {
    await insertDatabaseRow(a.pool, tenant, "sales");
    assert.deepEqual((await b.clients.tenants.getTenant({ name: tenant })).pools, []);
    await a.clients.pools.createPool({ tenant, tenantDb: "sales", pool: "bi" });
    assert.deepEqual((await a.clients.tenants.getTenant({ name: tenant })).pools, ["bi"], "own change at once");
    const seen = await eventually(async () => (await b.clients.tenants.getTenant({ name: tenant })).pools, (p) => p.length === 1, { timeoutMs: 2_000 });
    assert.deepEqual(seen, ["bi"]);
    await a.clients.pools.deletePool({ tenant, pool: "bi" });
    assert.deepEqual((await a.clients.tenants.getTenant({ name: tenant })).pools, []);
    assert.deepEqual(await eventually(async () => (await b.clients.tenants.getTenant({ name: tenant })).pools, (p) => p.length === 0, { timeoutMs: 2_000 }), []);
  });

  it("caches nothing while its notification connection is down, and listens again", async () => {
    await displayName(b);
    await a.pool.any(sql.type(z.object({ ok: z.boolean() }))`
      SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
      WHERE datname = current_database() AND application_name = 'qod listener'`);
    // While the listeners reconnect a change cannot be missed: reads go to the database.
    await a.pool.query(sql.typeAlias("void")`UPDATE tenants SET display_name = 'while-down' WHERE name = ${tenant}`);
    assert.equal(await eventually(() => displayName(b), (v) => v === "while-down", { timeoutMs: 2_000 }), "while-down");
    assert.equal(await eventually(listeners, (n) => n === 2), 2, "both replicas listen again");
    await displayName(b);
    await a.pool.query(sql.typeAlias("void")`UPDATE tenants SET display_name = 'after' WHERE name = ${tenant}`);
    assert.equal(await eventually(() => displayName(b), (v) => v === "after", { timeoutMs: 2_000 }), "after");
  });

  it("answers not found once the tenant is deleted, on every replica", async () => {
    const gone = uniquePrefix("gone");
    await a.clients.tenants.createTenant({ name: gone });
    await b.clients.tenants.getTenant({ name: gone });
    await a.clients.tenants.getTenant({ name: gone });
    await a.clients.tenants.deleteTenant({ name: gone });
    await assert.rejects(a.clients.tenants.getTenant({ name: gone }), /not found/i);
    const notFound = await eventually(
      () => b.clients.tenants.getTenant({ name: gone }).then(() => false, () => true),
      (missing) => missing,
      { timeoutMs: 2_000 },
    );
    assert.ok(notFound);
  });

  it("never keeps a stale tenant when reads race changes on both replicas", async () => {
    const race = uniquePrefix("race");
    await a.clients.tenants.createTenant({ name: race });
    const readers = (app: TestApp, until: () => boolean) =>
      (async () => {
        while (!until()) await app.clients.tenants.getTenant({ name: race });
      })();
    let writing = true;
    const reading = [a, b, a, b].map((app) => readers(app, () => !writing));
    await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).clients.tenants.setTenantDisabled({ name: race, disabled: i % 3 === 0 })),
    );
    writing = false;
    await Promise.all(reading);
    const stored = await a.pool.oneFirst(sql.type(z.object({ disabled: z.boolean() }))`SELECT disabled FROM tenants WHERE name = ${race}`);
    for (const app of [a, b]) {
      const seen = await eventually(async () => (await app.clients.tenants.getTenant({ name: race })).disabled, (d) => d === stored, { timeoutMs: 2_000 });
      assert.equal(seen, stored);
      for (let i = 0; i < 10; i++) assert.equal((await app.clients.tenants.getTenant({ name: race })).disabled, stored);
    }
  });

  it("notifies on the documented channel", async () => {
    const { rows } = await a.pool.query(sql.type(z.object({ tgname: z.string() }))`
      SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgrelid IN ('tenants'::regclass, 'pools'::regclass) ORDER BY tgname`);
    assert.deepEqual(rows.map((r) => r.tgname), ["pools_notify_changed", "pools_notify_truncated", "tenants_notify_changed", "tenants_notify_truncated"]);
    assert.equal(TENANT_CHANNEL, "qod_tenant_changed");
  });

  it("follows a rename and a truncate made by hand", async () => {
    const before = uniquePrefix("old");
    await a.clients.tenants.createTenant({ name: before });
    await b.clients.tenants.getTenant({ name: before });
    await a.pool.query(sql.typeAlias("void")`UPDATE tenants SET name = ${`${before}_new`} WHERE name = ${before}`);
    const missing = await eventually(() => b.clients.tenants.getTenant({ name: before }).then(() => false, () => true), (gone) => gone, { timeoutMs: 2_000 });
    assert.ok(missing, "the old name is dropped");

    await a.clients.pools.createPool({ tenant, tenantDb: "sales", pool: "adhoc" });
    await eventually(async () => (await b.clients.tenants.getTenant({ name: tenant })).pools, (p) => p.length === 1, { timeoutMs: 2_000 });
    await a.pool.query(sql.typeAlias("void")`TRUNCATE pools`);
    const pools = await eventually(async () => (await b.clients.tenants.getTenant({ name: tenant })).pools, (p) => p.length === 0, { timeoutMs: 2_000 });
    assert.deepEqual(pools, []);
  });
});
