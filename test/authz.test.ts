import assert from "node:assert/strict";
import { status, type ServiceError } from "@grpc/grpc-js";
import { startTestApp, type TestApp } from "./helpers/app";
import { BOLA_CASES, BOLA_EXPECTED, BOLA_LISTS, bolaVictimState, createBolaFixture, TARGETS, type BolaFixture, type ServiceKey } from "./helpers/bola";
import { expectError, type CallOptions } from "./helpers/clients";
import { uniquePrefix } from "./helpers/postgres";

type AnyCall = (request: Record<string, unknown>, options: CallOptions) => Promise<unknown>;

describe("authorization", () => {
  let app: TestApp;
  let f: BolaFixture;
  let victimBefore: unknown;
  const p = uniquePrefix("z");

  const call = (service: ServiceKey, method: string, request: Record<string, unknown>, options: CallOptions): Promise<unknown> =>
    (app.clients[service] as unknown as Record<string, AnyCall>)[method](request, options);

  /**
   * Settles a call and hands back its outcome to replay; a method still answering UNIMPLEMENTED
   * (DatabaseService until it is merged) skips the test instead.
   */
  async function settle(ctx: Mocha.Context, promise: Promise<unknown>): Promise<() => Promise<unknown>> {
    try {
      const value = await promise;
      return async () => value;
    } catch (err) {
      if ((err as ServiceError).code === status.UNIMPLEMENTED) ctx.skip();
      return async () => {
        throw err;
      };
    }
  }

  before(async () => {
    app = await startTestApp();
    f = await createBolaFixture(app.clients, app.pool, p);
    victimBefore = await bolaVictimState(app.pool, f);
  });
  after(async () => {
    await app.stop();
  });

  describe("BOLA matrix: a tenant admin of A on tenant B", () => {
    for (const row of BOLA_CASES) {
      for (const target of TARGETS) {
        it(`${row.rpc} on B (${target}) is tenant_forbidden`, async function () {
          const outcome = await settle(this, call(row.service, row.method, row.request(f, target), { apiKey: f.attacker }));
          await expectError(outcome(), BOLA_EXPECTED.grpcCode, BOLA_EXPECTED.reason);
        });
      }
    }

    for (const list of BOLA_LISTS) {
      it(`${list.rpc} shows nothing of B`, async function () {
        const outcome = await settle(this, call(list.service, list.method, list.request(f), { apiKey: f.attacker }));
        assert.equal(JSON.stringify(await outcome()).includes(f.b), false);
      });
    }

    it("changed nothing of B", async () => {
      assert.deepEqual(await bolaVictimState(app.pool, f), victimBefore);
      await app.clients.auth.login({ tenant: f.b, username: f.bUser, password: f.bPassword }, {});
    });

    it("still lets A's admin act on A", async () => {
      const tenant = await app.clients.tenants.getTenant({ name: f.a }, { apiKey: f.attacker });
      assert.equal(tenant?.name, f.a);
      const { tenants } = await app.clients.tenants.listTenants({}, { apiKey: f.attacker });
      assert.deepEqual(tenants.map((t) => t.name), [f.a]);
      await app.clients.auth.createUser({ tenant: f.a, username: "helper", password: "helper-password" }, { apiKey: f.attacker });
      const { users } = await app.clients.auth.listUsers({ tenant: f.a }, { apiKey: f.attacker });
      assert.deepEqual(users.map((u) => u.username).sort(), ["attacker", "helper"]);
      await app.clients.pools.listPools({ tenant: f.a }, { apiKey: f.attacker });
    });
  });

  describe("roles", () => {
    let user: string;
    before(async () => {
      await app.clients.auth.createUser({ tenant: f.a, username: "plain", password: "plain-password" });
      user = (await app.clients.auth.login({ tenant: f.a, username: "plain", password: "plain-password" }, {})).token;
    });

    // A plain user may not manage even its own tenant.
    const ownTenantCalls: [ServiceKey, string, (fx: BolaFixture) => Record<string, unknown>][] = [
      ["tenants", "listTenants", () => ({})],
      ["tenants", "getTenant", (fx) => ({ name: fx.a })],
      ["tenants", "setTenantDisabled", (fx) => ({ name: fx.a, disabled: true })],
      ["tenants", "setTenantAuth", (fx) => ({ name: fx.a, authProvider: "db" })],
      ["tenants", "deleteTenant", (fx) => ({ name: fx.a })],
      ["databases", "createDatabase", (fx) => ({ tenant: fx.a, name: "x", kind: "memory" })],
      ["databases", "listDatabases", (fx) => ({ tenant: fx.a })],
      ["databases", "getDatabase", (fx) => ({ tenant: fx.a, name: "x" })],
      ["databases", "updateDatabase", (fx) => ({ tenant: fx.a, name: "x" })],
      ["databases", "deleteDatabase", (fx) => ({ tenant: fx.a, name: "x" })],
      ["pools", "createPool", (fx) => ({ tenant: fx.a, tenantDb: "x", pool: "p", size: 1 })],
      ["pools", "listPools", (fx) => ({ tenant: fx.a })],
      ["pools", "deletePool", (fx) => ({ tenant: fx.a, pool: "p" })],
      ["auth", "createUser", (fx) => ({ tenant: fx.a, username: "x", password: "some-password" })],
      ["auth", "listUsers", (fx) => ({ tenant: fx.a })],
      ["auth", "deleteUser", (fx) => ({ tenant: fx.a, username: "attacker" })],
    ];
    for (const [service, method, request] of ownTenantCalls) {
      it(`a plain user gets admin_required on its own tenant's ${service}.${method}`, async function () {
        const outcome = await settle(this, call(service, method, request(f), { apiKey: user }));
        await expectError(outcome(), status.PERMISSION_DENIED, "admin_required");
      });
    }

    it("a plain user still uses its own account: WhoAmI and access tokens", async () => {
      assert.equal((await app.clients.auth.whoAmI({}, { apiKey: user })).role, "user");
      const pat = await app.clients.auth.createAccessToken({ name: "mine" }, { apiKey: user });
      await expectError(app.clients.pools.listPools({ tenant: f.a }, { apiKey: pat.token }), status.PERMISSION_DENIED, "admin_required");
      await app.clients.auth.revokeAccessToken({ id: pat.id }, { apiKey: user });
    });

    const superuserOnly: [ServiceKey, string, Record<string, unknown>][] = [
      ["tenants", "createTenant", { name: `${p}_new` }],
      ["auth", "createUser", { username: `${p}_root`, password: "root-password" }],
      ["auth", "listUsers", {}],
      ["auth", "deleteUser", { username: "admin" }],
    ];
    for (const [service, method, request] of superuserOnly) {
      it(`a tenant admin gets superuser_required on ${service}.${method} ${JSON.stringify(request)}`, async () => {
        await expectError(call(service, method, request, { apiKey: f.attacker }), status.PERMISSION_DENIED, "superuser_required");
        await expectError(call(service, method, request, { apiKey: user }), status.PERMISSION_DENIED, "superuser_required");
      });
    }

    it("a superuser session may do everything", async () => {
      const admin = (await app.clients.auth.login({ username: "admin", password: "admin" }, {})).token;
      await app.clients.tenants.getTenant({ name: f.b }, { apiKey: admin });
      await app.clients.auth.listUsers({ tenant: f.b }, { apiKey: admin });
      const { tenants } = await app.clients.tenants.listTenants({}, { apiKey: admin });
      assert.ok(tenants.some((t) => t.name === f.a) && tenants.some((t) => t.name === f.b));
    });
  });
});
