// SupavisorService against a real upstream (the run's Postgres): validation as Supavisor's tables
// say and better, the live credential check, the upsert's merge and its race, ban and its expiry,
// terminate, credentials, who may call what, and that no reply or log line holds a password.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { status } from "@grpc/grpc-js";
import { z } from "zod";
import { DatabaseStatus } from "../gen/qod/v1/database";
import { sql } from "../src/db/sql";
import { createLogger } from "../src/logger";
import { startTestApp, type TestApp } from "./helpers/app";
import { expectError, type CallOptions } from "./helpers/clients";
import { freePort } from "../src/db/embedded";
import { generateSelfSignedCertificate } from "../src/edge/tls";
import { sharedPostgres, uniquePrefix } from "./helpers/postgres";
import { expectRestError, rest, type RestResponse } from "./helpers/rest";
import { waitFor } from "./helpers/wait";

/** A real certificate (made in `before`), to show that two of them are still refused as a CA. */
let CA = "";

describe("SupavisorService", function () {
  this.timeout(90_000);
  let app: TestApp;
  const p = uniquePrefix("sv");
  const logLines: string[] = [];
  const role = `${p}_app`;
  const rolePassword = `planted-${randomBytes(8).toString("hex")}`;
  const upstream = () => sharedPostgres().target;

  /** A tenant body on the run's Postgres, as `role` (require_user true). */
  const body = (extra: Record<string, unknown> = {}, user: Record<string, unknown> = {}) => ({
    tenant: {
      db_host: upstream().host,
      db_port: upstream().port,
      db_database: "postgres",
      require_user: true,
      users: [{ db_user: role, db_password: rolePassword, mode_type: "transaction", pool_size: 3, ...user }],
      ...extra,
    },
  });
  const put = (id: string, payload: unknown, auth?: CallOptions) => rest(app, "PUT", `/api/tenants/${id}`, { body: payload, ...(auth && { auth }) });
  const get = (id: string, auth?: CallOptions) => rest(app, "GET", `/api/tenants/${id}`, auth ? { auth } : {});
  const data = (res: RestResponse) => (res.json as { data: Record<string, any> }).data;
  const ok = (res: RestResponse) => {
    assert.equal(res.status, 200, res.text);
    return res;
  };
  const tenantExists = async (name: string) =>
    (await app.pool.maybeOne(sql.type(z.object({ name: z.string() }))`SELECT name FROM tenants WHERE name = ${name}`)) !== null;

  before(async () => {
    const sink = new Writable({ write: (chunk: Buffer, _e, done) => (logLines.push(chunk.toString()), done()) });
    app = await startTestApp({ logger: createLogger("trace", sink) });
    await sharedPostgres().admin.query(sql.typeAlias("void")`CREATE ROLE ${sql.identifier([role])} LOGIN PASSWORD ${sql.literalValue(rolePassword)}`);
    CA = (await generateSelfSignedCertificate({ hosts: ["localhost"] })).cert;
  });
  after(async () => {
    await app?.stop();
    await sharedPostgres().admin.query(sql.typeAlias("void")`DROP ROLE IF EXISTS ${sql.identifier([role])}`);
  });

  it("creates a tenant after logging each user in, keeps the password sealed and its SCRAM verifier, and never returns it", async () => {
    const id = `${p}_a`;
    const created = data(ok(await put(id, body())));
    assert.equal(created.external_id, id);
    assert.match(created.default_parameter_status.server_version, /^\d+/);
    assert.deepEqual(created.allow_list, ["0.0.0.0/0", "::/0"]);
    assert.deepEqual(created.users, [{ db_user_alias: role, db_user: role, pool_size: 3, is_manager: false, mode_type: "transaction", pool_checkout_timeout: 60000 }]);
    const stored = await app.pool.one(sql.type(z.object({ secret: z.instanceof(Buffer), verifier: z.string(), upstream_user: z.string() }))`
      SELECT secret, verifier, upstream_user FROM pools WHERE tenant = ${id}`);
    assert.ok(!stored.secret.includes(Buffer.from(rolePassword)), "sealed, not plain");
    assert.match(stored.verifier, /^SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/);
    assert.equal(stored.upstream_user, role);
    // The same objects through QOD's API.
    assert.deepEqual((await app.clients.tenants.getTenant({ name: id })).pools, [role]);
    const { tenantDbs } = await app.clients.databases.listDatabases({ tenant: id });
    assert.deepEqual(tenantDbs.map((d) => [d.name, d.kind, d.status]), [[`${id}_upstream`, "external", DatabaseStatus.READY]]);
  });

  describe("validation: each rule a 400 with its reason and field, and nothing stored", () => {
    const two = [
      { db_user: role, db_password: rolePassword, mode_type: "transaction", is_manager: true },
      { db_user: `${role}2`, db_password: "x", mode_type: "session" },
    ];
    const cases: [string, string, () => unknown, string, string][] = [
      ["an external_id that is not a tenant name", "Bad-Id", () => body(), "invalid_id", "external_id"],
      ["a body external_id that differs from the path's", "", () => body({ external_id: `${p}_other` }), "invalid_id", "tenant.external_id"],
      ["port 0", "", () => body({ db_port: 0 }), "invalid_size", "tenant.db_port"],
      ["port 65536", "", () => body({ db_port: 65536 }), "invalid_size", "tenant.db_port"],
      ["a host with a space", "", () => body({ db_host: "no such host" }), "invalid_upstream", "tenant.db_host"],
      ["ip_version v5", "", () => body({ ip_version: "v5" }), "invalid_upstream", "tenant.ip_version"],
      ["upstream_verify maybe", "", () => body({ upstream_ssl: true, upstream_verify: "maybe" }), "invalid_upstream", "tenant.upstream_verify"],
      ["mode_type statement", "", () => body({}, { mode_type: "statement" }), "invalid_mode", "tenant.users[0].mode_type"],
      ["pool_size 0", "", () => body({}, { pool_size: 0 }), "invalid_size", "tenant.users[0].pool_size"],
      ["max_clients 0", "", () => body({}, { max_clients: 0 }), "invalid_size", "tenant.users[0].max_clients"],
      ["default_pool_size 0", "", () => body({ default_pool_size: 0 }), "invalid_size", "tenant.default_pool_size"],
      ["default_max_clients -1", "", () => body({ default_max_clients: -1 }), "invalid_size", "tenant.default_max_clients"],
      ["client_idle_timeout -1", "", () => body({ client_idle_timeout: -1 }), "invalid_size", "tenant.client_idle_timeout"],
      ["require_user false without auth_query", "", () => body({ require_user: false }, { is_manager: true }), "invalid_auth_query", "tenant.auth_query"],
      ["require_user false with two users", "", () => ({ tenant: { ...body().tenant, require_user: false, auth_query: "select 1", users: two } }), "invalid_require_user", "tenant.users"],
      ["require_user false with a user that is not the manager", "", () => body({ require_user: false, auth_query: "select 1" }), "invalid_require_user", "tenant.users[0].is_manager"],
      ["peer verification without a CA", "", () => body({ upstream_ssl: true, upstream_verify: "peer" }), "invalid_upstream_tls_ca", "tenant.upstream_verify"],
      ["a CA that is not PEM", "", () => body({ upstream_ssl: true, upstream_verify: "peer", upstream_tls_ca: "nope" }), "invalid_upstream_tls_ca", "tenant.upstream_tls_ca"],
      ["two certificates as the CA", "", () => body({ upstream_ssl: true, upstream_verify: "peer", upstream_tls_ca: `${CA}\n${CA}` }), "invalid_upstream_tls_ca", "tenant.upstream_tls_ca"],
      ["a bare address in allow_list", "", () => body({ allow_list: ["0.0.0.0"] }), "invalid_allow_list", "tenant.allow_list[0]"],
      ["a prefix too long in allow_list", "", () => body({ allow_list: ["10.0.0.0/33"] }), "invalid_allow_list", "tenant.allow_list[0]"],
      ["no db_host on create", "", () => ({ tenant: { ...body().tenant, db_host: undefined } }), "invalid_upstream", "tenant.db_host"],
      ["no require_user on create", "", () => ({ tenant: { ...body().tenant, require_user: undefined } }), "invalid_require_user", "tenant.require_user"],
      ["no users on create", "", () => ({ tenant: { ...body().tenant, users: [] } }), "invalid_argument", "tenant.users"],
      ["a new user without a password", "", () => body({}, { db_password: undefined }), "invalid_password", "tenant.users[0].db_password"],
      ["the same db_user twice", "", () => ({ tenant: { ...body().tenant, users: [body().tenant.users[0], body().tenant.users[0]] } }), "invalid_username", "tenant.users[1].db_user"],
      ["a db_user with a control character", "", () => body({}, { db_user: "a\u0007b" }), "invalid_username", "tenant.users[0].db_user"],
      ["use_jit true", "", () => body({ use_jit: true }), "invalid_argument", "tenant.use_jit"],
    ];
    for (const [title, id, payload, reason, field] of cases) {
      it(title, async () => {
        const name = id || `${p}_v`;
        const res = await put(name, payload());
        const err = expectRestError(res, 400, status.INVALID_ARGUMENT, reason);
        assert.match(err.message, new RegExp(field.replace(/[[\].]/g, "\\$&")));
        assert.ok(!res.text.includes(rolePassword));
        assert.equal(await tenantExists(name.toLowerCase()), false);
      });
    }

    it("refuses a body without the {\"tenant\": …} wrapper, and unknown fields", async () => {
      expectRestError(await put(`${p}_w`, body().tenant), 400, status.INVALID_ARGUMENT, "invalid_argument");
      expectRestError(await put(`${p}_w`, { tenant: { ...body().tenant, surprise: 1 } }), 400, status.INVALID_ARGUMENT, "invalid_argument");
      assert.equal(await tenantExists(`${p}_w`), false);
    });

    it("applies the same rules to an update, against the merged tenant", async () => {
      const id = `${p}_u`;
      ok(await put(id, body()));
      expectRestError(await put(id, { tenant: { require_user: false } }), 400, status.INVALID_ARGUMENT, "invalid_require_user");
      expectRestError(await put(id, { tenant: { upstream_ssl: true, upstream_verify: "peer" } }), 400, status.INVALID_ARGUMENT, "invalid_upstream_tls_ca");
      expectRestError(await put(id, { tenant: { users: [{ db_user: "newcomer", mode_type: "session" }] } }), 400, status.INVALID_ARGUMENT, "invalid_password");
      assert.equal(data(await get(id)).require_user, true, "unchanged");
    });
  });

  describe("the live credential check", () => {
    it("answers 400 naming the user when the password is wrong, without the password", async () => {
      const res = await put(`${p}_pw`, body({}, { db_password: "wrong-password-123" }));
      const err = expectRestError(res, 400, status.INVALID_ARGUMENT, "invalid_upstream");
      assert.match(err.message, new RegExp(`could not log in as "${role}": the upstream refused the password`));
      assert.ok(!res.text.includes("wrong-password-123"));
      assert.equal(await tenantExists(`${p}_pw`), false);
    });

    it("answers 400 when nothing listens on the upstream's port", async () => {
      const res = await put(`${p}_closed`, body({ db_port: await freePort() }));
      const err = expectRestError(res, 400, status.INVALID_ARGUMENT, "invalid_upstream");
      assert.match(err.message, /refused the connection/);
    });

    it("answers 400 when TLS is asked of an upstream that does not speak it", async () => {
      const res = await put(`${p}_tls`, body({ upstream_ssl: true, upstream_verify: "none" }));
      const err = expectRestError(res, 400, status.INVALID_ARGUMENT, "invalid_upstream");
      assert.match(err.message, /does not accept TLS/);
    });

    it("runs the auth_query as the manager when require_user is false", async () => {
      const bad = await put(`${p}_aq`, body({ require_user: false, auth_query: "SELECT nonsense FROM nowhere WHERE x=$1" }, { is_manager: true }));
      assert.match(expectRestError(bad, 400, status.INVALID_ARGUMENT, "invalid_upstream").message, /auth_query/);
      ok(await put(`${p}_aq`, { tenant: { ...body().tenant, require_user: false, auth_query: "SELECT rolname FROM pg_roles WHERE rolname=$1", users: [{ ...body().tenant.users[0], is_manager: true }] } }));
    });
  });

  it("merges an update: absent fields keep their values, users replace the set, an unchanged user keeps its password", async () => {
    const id = `${p}_m`;
    ok(await put(id, body({ default_max_clients: 50 })));
    const updated = data(ok(await put(id, { tenant: { default_pool_size: 7, allow_list: ["10.0.0.0/8"] } })));
    assert.deepEqual([updated.default_pool_size, updated.default_max_clients, updated.allow_list, updated.db_port], [7, 50, ["10.0.0.0/8"], upstream().port]);
    const verifier = () => app.pool.oneFirst(sql.type(z.object({ verifier: z.string() }))`SELECT verifier FROM pools WHERE tenant = ${id} AND name = ${role}`);
    const before = await verifier();
    // The same user without a password (kept), re-sized.
    const resized = data(ok(await put(id, { tenant: { users: [{ db_user: role, mode_type: "session", pool_size: 9 }] } })));
    assert.deepEqual(resized.users.map((u: any) => [u.db_user, u.pool_size, u.mode_type]), [[role, 9, "session"]]);
    assert.equal(await verifier(), before);
    assert.deepEqual((await app.clients.pools.listPools({ tenant: id })).pools.map((pool) => [pool.pool, pool.size]), [[role, 9]]);
  });

  it("takes concurrent creates of one id as one create and updates, never a 5xx", async () => {
    const id = `${p}_race`;
    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => put(id, body({ default_pool_size: i + 1 }))));
    for (const res of answers) assert.ok(res.status === 200 || res.status === 409, `${res.status} ${res.text}`);
    assert.ok(answers.some((res) => res.status === 200));
    const rows = await app.pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*)::int AS n FROM supavisor_tenants WHERE tenant = ${id}`);
    assert.equal(rows, 1);
  });

  describe("ban", () => {
    const patch = (id: string, payload: unknown, auth?: CallOptions) => rest(app, "PATCH", `/api/tenants/${id}`, { body: payload, ...(auth && { auth }) });

    it("needs a reason, shows in both APIs, and ends at banned_until", async () => {
      const id = `${p}_ban`;
      ok(await put(id, body()));
      expectRestError(await patch(id, { banned: true }), 400, status.INVALID_ARGUMENT, "invalid_ban_reason");
      const until = new Date(Date.now() + 1_500);
      const banned = data(ok(await patch(id, { banned: "true", ban_reason: "abuse", banned_until: until.toISOString() })));
      assert.deepEqual([banned.banned, banned.ban_reason, banned.banned_until], [true, "abuse", until.toISOString()]);
      const qod = await app.clients.tenants.getTenant({ name: id });
      assert.deepEqual([qod.banned, qod.banReason], [true, "abuse"]);
      await waitFor("the ban to end", async () => data(await get(id)).banned === false, { timeoutMs: 5_000, everyMs: 100 });
      assert.equal((await app.clients.tenants.getTenant({ name: id })).banned, false);
      // PUT cannot set the ban fields (Supavisor's rule); unbanning clears them.
      ok(await patch(id, { banned: true, ban_reason: "again" }));
      ok(await put(id, { tenant: { banned_at: null, ban_reason: null } }));
      assert.equal(data(await get(id)).banned, true);
      const unbanned = data(ok(await patch(id, { banned: false })));
      assert.deepEqual([unbanned.banned, unbanned.ban_reason, unbanned.banned_at], [false, undefined, undefined]);
    });

    it("answers 404 for a tenant that does not exist", async () => {
      expectRestError(await patch(`${p}_nobody`, { banned: true, ban_reason: "x" }), 404, status.NOT_FOUND, "not_found");
    });
  });

  it("terminates, updates the manager's credentials, and deletes", async () => {
    const id = `${p}_life`;
    ok(await put(id, { tenant: { ...body().tenant, require_user: false, auth_query: "SELECT rolname FROM pg_roles WHERE rolname=$1", users: [{ ...body().tenant.users[0], is_manager: true }] } }));
    assert.deepEqual(ok(await rest(app, "GET", `/api/tenants/${id}/terminate`)).json, { result: "ok" });
    const terminated = await app.pool.oneFirst(sql.type(z.object({ t: z.number().nullable() }))`SELECT terminated_at AS t FROM tenants WHERE name = ${id}`);
    assert.ok(terminated !== null);

    const credentials = (payload: unknown) => rest(app, "POST", `/api/tenants/${id}/update_auth_credentials`, { body: payload });
    expectRestError(await credentials({ db_user: role }), 400, status.INVALID_ARGUMENT, "invalid_password");
    expectRestError(await credentials({ db_user: role, db_password: "not-the-password" }), 400, status.INVALID_ARGUMENT, "invalid_upstream");
    assert.deepEqual(ok(await credentials({ db_user: role, db_password: rolePassword })).json, {});

    const other = `${p}_life2`;
    ok(await put(other, body()));
    expectRestError(await rest(app, "POST", `/api/tenants/${other}/update_auth_credentials`, { body: { db_user: role, db_password: rolePassword } }), 400, status.INVALID_ARGUMENT, "invalid_require_user");

    // QOD's DeleteTenant refuses while users (pools) exist; Supavisor's delete takes them along.
    await expectError(app.clients.tenants.deleteTenant({ name: id }), status.ABORTED, "has_pools");
    await expectError(app.clients.databases.updateDatabase({ tenant: id, name: "upstream", defaultSchema: "x" }), status.INVALID_ARGUMENT, "invalid_kind");
    assert.deepEqual(ok(await rest(app, "DELETE", `/api/tenants/${id}`)).json, {});
    expectRestError(await get(id), 404, status.NOT_FOUND, "not_found");
    expectRestError(await rest(app, "DELETE", `/api/tenants/${id}`), 404, status.NOT_FOUND, "not_found");
    assert.equal(await tenantExists(id), false);
  });

  it("shows QOD's setDisabled in its replies", async () => {
    const id = `${p}_dis`;
    ok(await put(id, body()));
    await app.clients.tenants.setTenantDisabled({ name: id, disabled: true });
    assert.equal(data(await get(id)).disabled, true);
  });

  it("answers /api/health without a credential", async () => {
    const res = await rest(app, "GET", "/api/health", { auth: {} });
    assert.deepEqual([res.status, res.json], [200, { status: "ok" }]);
  });

  describe("who may call what", () => {
    const admin = { password: "admin-password-1" };
    let ownAdmin: CallOptions;
    const mine = `${p}_own`;
    const theirs = `${p}_theirs`;

    before(async () => {
      ok(await put(mine, body()));
      ok(await put(theirs, body()));
      await app.clients.auth.createUser({ tenant: mine, username: "boss", password: admin.password, role: "admin" });
      const { token } = await app.clients.auth.login({ tenant: mine, username: "boss", password: admin.password });
      ownAdmin = { apiKey: token };
    });

    it("lets a tenant admin read and update its own tenant, but not move its upstream, ban it, or create one", async () => {
      ok(await get(mine, ownAdmin));
      ok(await put(mine, { tenant: { default_pool_size: 4 } }, ownAdmin));
      expectRestError(await put(mine, { tenant: { db_port: 1 } }, ownAdmin), 403, status.PERMISSION_DENIED, "superuser_required");
      expectRestError(await rest(app, "PATCH", `/api/tenants/${mine}`, { body: { banned: false }, auth: ownAdmin }), 403, status.PERMISSION_DENIED, "superuser_required");
      expectRestError(await put(`${mine}x`, body(), ownAdmin), 403, status.PERMISSION_DENIED, "tenant_forbidden");
    });

    it("refuses another tenant over REST and gRPC alike, whether it exists or not", async () => {
      for (const id of [theirs, `${p}_ghost`]) {
        expectRestError(await get(id, ownAdmin), 403, status.PERMISSION_DENIED, "tenant_forbidden");
        expectRestError(await put(id, { tenant: { default_pool_size: 2 } }, ownAdmin), 403, status.PERMISSION_DENIED, "tenant_forbidden");
        expectRestError(await rest(app, "DELETE", `/api/tenants/${id}`, { auth: ownAdmin }), 403, status.PERMISSION_DENIED, "tenant_forbidden");
        expectRestError(await rest(app, "GET", `/api/tenants/${id}/terminate`, { auth: ownAdmin }), 403, status.PERMISSION_DENIED, "tenant_forbidden");
        await expectError(app.clients.supavisor.getSupavisorTenant({ externalId: id }, ownAdmin), status.PERMISSION_DENIED, "tenant_forbidden");
        await expectError(app.clients.supavisor.deleteSupavisorTenant({ externalId: id }, ownAdmin), status.PERMISSION_DENIED, "tenant_forbidden");
      }
      ok(await get(theirs));
    });

    it("refuses calls without a credential (health aside)", async () => {
      expectRestError(await get(mine, {}), 401, status.UNAUTHENTICATED, "unauthenticated");
      await expectError(app.clients.supavisor.getSupavisorTenant({ externalId: mine }, {}), status.UNAUTHENTICATED, "unauthenticated");
    });
  });

  it("never puts a planted db_password in a reply or a log line (log at trace)", async () => {
    const id = `${p}_plant`;
    const replies = [
      await put(id, body()),
      await get(id),
      await put(id, body({}, { db_password: `${rolePassword}-wrong` })),
      await rest(app, "GET", "/api/tenant/list"),
      await rest(app, "GET", `/api/pool/list?tenant=${id}`),
      await rest(app, "GET", `/api/database/list?tenant=${id}`),
    ];
    for (const res of replies) assert.ok(!res.text.includes(rolePassword), res.text);
    const leaked = logLines.filter((line) => line.includes(rolePassword));
    assert.deepEqual(leaked, []);
  });
});
