import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { z } from "zod";
import { sql } from "../src/db/sql";
import { startTestApp, type TestApp } from "./helpers/app";
import { expectError } from "./helpers/clients";
import { uniquePrefix } from "./helpers/postgres";

describe("TenantService", () => {
  let app: TestApp;
  const p = uniquePrefix();
  const count = async () => app.pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*)::int AS n FROM tenants`);

  before(async () => {
    app = await startTestApp();
  });
  after(async () => {
    await app.stop();
  });

  it("creates a tenant from the seed's body {name} with the documented defaults", async () => {
    const tenant = await app.clients.tenants.createTenant({ name: `${p}_acme` });
    assert.ok(tenant);
    assert.equal(tenant.name, `${p}_acme`);
    assert.equal(tenant.id, `${p}_acme`);
    assert.equal(tenant.displayName, `${p}_acme`);
    assert.equal(tenant.authProvider, "db");
    assert.deepEqual(tenant.authConfig, {});
    assert.deepEqual(tenant.pools, []);
    assert.equal(tenant.disabled, false);
  });

  it("accepts `id` as an alias of name and lowercases it", async () => {
    const tenant = await app.clients.tenants.createTenant({ id: `${p.toUpperCase()}_ALIAS`, displayName: "  Alias Inc  " });
    assert.equal(tenant?.name, `${p}_alias`);
    assert.equal(tenant?.displayName, "Alias Inc");
  });

  it("answers ALREADY_EXISTS for a duplicate name and for a duplicate display name", async () => {
    await app.clients.tenants.createTenant({ name: `${p}_dup`, displayName: `${p} Dup` });
    await expectError(app.clients.tenants.createTenant({ name: `${p}_dup` }), status.ALREADY_EXISTS, "exists");
    await expectError(app.clients.tenants.createTenant({ name: `${p}_dup2`, displayName: `${p} Dup` }), status.ALREADY_EXISTS, "exists");
  });

  it("gives one success and ALREADY_EXISTS for the rest when 10 create one name at once", async () => {
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => app.clients.tenants.createTenant({ name: `${p}_race` })));
    assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
    for (const r of results.filter((r) => r.status === "rejected")) {
      await expectError(Promise.reject((r).reason), status.ALREADY_EXISTS, "exists");
    }
  });

  describe("name rules (SPEC §6): rejected with a field violation, nothing stored", () => {
    const bad: [string, string][] = [
      ["empty", ""],
      ["leading digit", "1acme"],
      ["leading underscore", "_acme"],
      ["hyphen", "ac-me"],
      ["space", "ac me"],
      ["64 characters", `a${"b".repeat(63)}`],
      ["SQL metacharacters", "acme'; DROP TABLE tenants; --"],
      ["quote", 'ac"me'],
      ["non-ASCII", "acmé"],
      ["dot", "acme.prod"],
    ];
    for (const [label, name] of bad) {
      it(`rejects ${label}`, async () => {
        const before = await count();
        const err = await expectError(app.clients.tenants.createTenant({ name }), status.INVALID_ARGUMENT, "invalid_id");
        assert.equal(err.violations[0]?.field, "name");
        assert.equal(await count(), before);
      });
    }
    it("accepts a 63-character name", async () => {
      const name = `${p}${"x".repeat(63 - p.length)}`;
      const tenant = await app.clients.tenants.createTenant({ name });
      assert.equal(tenant?.name, name);
    });
  });

  describe("authConfig per provider (the seed's rule)", () => {
    const ok: [string, Record<string, string>][] = [
      ["keycloak", { issuer: "https://kc.example.com/realms/acme", realm: "acme", clientId: "qod" }],
      ["google", { issuer: "https://accounts.google.com", hd: "example.com", clientId: "qod" }],
      ["azure", { issuer: "https://login.microsoftonline.com/x/v2.0", tenantId: "x", clientId: "qod" }],
      ["aws", { issuer: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc", userPoolId: "eu-west-1_abc", clientId: "qod" }],
    ];
    ok.forEach(([provider, authConfig], i) => {
      it(`accepts ${provider} with issuer and its key`, async () => {
        const tenant = await app.clients.tenants.createTenant({ name: `${p}_ok${i}`, authProvider: provider, authConfig });
        assert.equal(tenant?.authProvider, provider);
        assert.deepEqual(tenant?.authConfig, authConfig);
      });
    });
    const bad: [string, string, Record<string, string>, string][] = [
      ["unknown provider", "ldap", {}, "invalid_auth_provider"],
      ["db with a config", "db", { issuer: "https://x.example.com" }, "invalid_auth_config"],
      ["keycloak without realm", "keycloak", { issuer: "https://kc.example.com/realms/acme" }, "invalid_auth_config"],
      ["keycloak without issuer", "keycloak", { realm: "acme" }, "invalid_auth_config"],
      ["http issuer", "keycloak", { issuer: "http://kc.example.com/realms/acme", realm: "acme" }, "invalid_auth_config"],
      ["relative issuer", "google", { issuer: "accounts.google.com", hd: "x.com" }, "invalid_auth_config"],
      ["google with realm instead of hd", "google", { issuer: "https://accounts.google.com", realm: "x" }, "invalid_auth_config"],
      ["azure without tenantId", "azure", { issuer: "https://login.microsoftonline.com/x/v2.0" }, "invalid_auth_config"],
      ["aws without userPoolId", "aws", { issuer: "https://cognito-idp.eu-west-1.amazonaws.com/x" }, "invalid_auth_config"],
      ["unknown key", "keycloak", { issuer: "https://kc.example.com/realms/a", realm: "a", evil: "1" }, "invalid_auth_config"],
    ];
    bad.forEach(([label, provider, authConfig, reason], i) => {
      it(`rejects ${label}`, async () => {
        const before = await count();
        await expectError(app.clients.tenants.createTenant({ name: `${p}_bad${i}`, authProvider: provider, authConfig }), status.INVALID_ARGUMENT, reason);
        assert.equal(await count(), before);
      });
    });
  });

  it("gets a tenant, and answers NOT_FOUND for a missing one", async () => {
    await app.clients.tenants.createTenant({ name: `${p}_get` });
    const tenant = await app.clients.tenants.getTenant({ name: `${p}_GET` });
    assert.equal(tenant?.name, `${p}_get`);
    await expectError(app.clients.tenants.getTenant({ name: `${p}_missing` }), status.NOT_FOUND, "not_found");
  });

  it("disables and re-enables a tenant", async () => {
    await app.clients.tenants.createTenant({ name: `${p}_dis` });
    const off = await app.clients.tenants.setTenantDisabled({ name: `${p}_dis`, disabled: true });
    assert.equal(off.disabled, true);
    const on = await app.clients.tenants.setTenantDisabled({ name: `${p}_dis`, disabled: false });
    assert.equal(on.disabled, false);
    await expectError(app.clients.tenants.setTenantDisabled({ name: `${p}_nope`, disabled: true }), status.NOT_FOUND, "not_found");
  });

  it("replaces the auth provider and config, validating them", async () => {
    await app.clients.tenants.createTenant({ name: `${p}_auth` });
    const authConfig = { issuer: "https://kc.example.com/realms/acme", realm: "acme", clientId: "qod" };
    const tenant = await app.clients.tenants.setTenantAuth({ name: `${p}_auth`, authProvider: "keycloak", authConfig });
    assert.equal(tenant?.authProvider, "keycloak");
    assert.deepEqual(tenant?.authConfig, authConfig);
    const back = await app.clients.tenants.setTenantAuth({ name: `${p}_auth`, authProvider: "db", authConfig: {} });
    assert.deepEqual(back.authConfig, {});
    await expectError(app.clients.tenants.setTenantAuth({ name: `${p}_auth`, authProvider: "keycloak", authConfig: {} }), status.INVALID_ARGUMENT, "invalid_auth_config");
    const unchanged = await app.clients.tenants.getTenant({ name: `${p}_auth` });
    assert.equal(unchanged.authProvider, "db");
  });

  it("deletes a tenant, then answers NOT_FOUND", async () => {
    await app.clients.tenants.createTenant({ name: `${p}_del` });
    assert.deepEqual(await app.clients.tenants.deleteTenant({ name: `${p}_del` }), {});
    await expectError(app.clients.tenants.getTenant({ name: `${p}_del` }), status.NOT_FOUND, "not_found");
    await expectError(app.clients.tenants.deleteTenant({ name: `${p}_del` }), status.NOT_FOUND, "not_found");
  });

  it("lists tenants ordered by name, in pages that chain to the end", async () => {
    const names = Array.from({ length: 7 }, (_, i) => `${p}_page${i}`);
    for (const name of [...names].reverse()) await app.clients.tenants.createTenant({ name });
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await app.clients.tenants.listTenants({ pageSize: 3, pageToken });
      assert.ok(page.tenants.length <= 3);
      seen.push(...page.tenants.map((t) => t.name));
      pageToken = page.nextPageToken;
    } while (pageToken);
    assert.deepEqual(seen, [...seen].sort());
    assert.deepEqual(seen.filter((n) => n.startsWith(`${p}_page`)), names);
  });

  it("rejects a forged page token and a negative page size", async () => {
    await expectError(app.clients.tenants.listTenants({ pageToken: "not-a-token" }), status.INVALID_ARGUMENT, "invalid_page_token");
    await expectError(app.clients.tenants.listTenants({ pageSize: -1 }), status.INVALID_ARGUMENT, "invalid_page_size");
  });

  it("answers UNAUTHENTICATED without a credential or with a wrong key", async () => {
    await expectError(app.clients.tenants.listTenants({}, {}), status.UNAUTHENTICATED, "unauthenticated");
    await expectError(app.clients.tenants.createTenant({ name: `${p}_x` }, { apiKey: "wrong-key-wrong-key" }), status.UNAUTHENTICATED, "unauthenticated");
  });
});
