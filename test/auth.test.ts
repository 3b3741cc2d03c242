import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { status } from "@grpc/grpc-js";
import { z } from "zod";
import { seedAdmin } from "../src/auth/seed";
import { sql } from "../src/db/sql";
import { startTestApp, type TestApp } from "./helpers/app";
import { expectError } from "./helpers/clients";
import { quietLogger, uniquePrefix } from "./helpers/postgres";

describe("AuthService", () => {
  let app: TestApp;
  const p = uniquePrefix("a");
  const PASSWORD = "correct horse battery";

  /** Creates a db tenant with an admin `ann` and a plain user `bob`; returns their session tokens. */
  async function tenantWithUsers(name: string): Promise<{ ann: string; bob: string }> {
    await app.clients.tenants.createTenant({ name });
    await app.clients.auth.createUser({ tenant: name, username: "ann", password: PASSWORD, role: "admin" });
    await app.clients.auth.createUser({ tenant: name, username: "bob", password: PASSWORD });
    const ann = await app.clients.auth.login({ tenant: name, username: "ann", password: PASSWORD }, {});
    const bob = await app.clients.auth.login({ tenant: name, username: "bob", password: PASSWORD }, {});
    return { ann: ann.token, bob: bob.token };
  }
  const auditActions = async (target: string, tenant?: string) =>
    app.pool.anyFirst(sql.type(z.object({ action: z.string() }))`
      SELECT action FROM audit_log WHERE target = ${target} AND tenant IS NOT DISTINCT FROM ${tenant ?? null} ORDER BY id`);

  before(async () => {
    // Failed logins of every test come from one address; keep this suite clear of the throttle.
    app = await startTestApp({ env: { QOD_LOGIN_MAX_FAILURES: "1000" } });
  });
  after(async () => {
    await app.stop();
  });

  describe("bootstrap superuser and sessions", () => {
    it("logs the bootstrap admin in, and its token works as X-API-Key and as Bearer", async () => {
      const before = Date.now();
      const login = await app.clients.auth.login({ username: "admin", password: "admin" }, {});
      assert.match(login.token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
      assert.equal(login.username, "admin");
      assert.equal(login.tenant, "");
      assert.equal(login.role, "admin");
      assert.equal(login.superuser, true);
      assert.deepEqual(login.manageableTenants, []);
      const ttlMs = app.config.sessionTtlSec * 1000;
      assert.ok(login.expireTime && Math.abs(login.expireTime.getTime() - (before + ttlMs)) < 5000);
      await app.clients.tenants.listTenants({}, { apiKey: login.token });
      const who = await app.clients.auth.whoAmI({}, { bearer: login.token });
      assert.deepEqual(who, { username: "admin", role: "admin", tenant: "", superuser: true, manageableTenants: [], credential: "session" });
    });

    it("describes the static key", async () => {
      const who = await app.clients.auth.whoAmI();
      assert.deepEqual(who, { username: "api-key", role: "admin", tenant: "", superuser: true, manageableTenants: [], credential: "api_key" });
    });

    it("refuses a wrong password, an unknown user and the wrong realm with one answer", async () => {
      const requests = [
        { username: "admin", password: "wrong-password" },
        { username: `${p}_nobody`, password: "admin" },
        { tenant: `${p}_norealm`, username: "admin", password: "admin" },
      ];
      const messages = new Set<string>();
      for (const request of requests) {
        messages.add((await expectError(app.clients.auth.login(request, {}), status.UNAUTHENTICATED, "unauthenticated")).message);
      }
      assert.equal(messages.size, 1);
    });

    it("validates the login request", async () => {
      await expectError(app.clients.auth.login({ password: "x" }, {}), status.INVALID_ARGUMENT, "invalid_username");
      await expectError(app.clients.auth.login({ username: "a".repeat(65), password: "x" }, {}), status.INVALID_ARGUMENT, "invalid_username");
      await expectError(app.clients.auth.login({ username: "admin" }, {}), status.INVALID_ARGUMENT, "invalid_password");
      await expectError(app.clients.auth.login({ username: "admin", password: "x".repeat(73) }, {}), status.INVALID_ARGUMENT, "invalid_password");
      await expectError(app.clients.auth.login({ tenant: "bad name", username: "admin", password: "x" }, {}), status.INVALID_ARGUMENT, "invalid_id");
    });

    it("seeds the admin once, even when replicas start together", async () => {
      await app.pool.query(sql.typeAlias("void")`DELETE FROM users WHERE tenant IS NULL AND username = 'seeded'`);
      const config = { ...app.config, adminUsername: "seeded", adminPassword: "seeded-password" };
      await Promise.all(Array.from({ length: 8 }, () => seedAdmin(app.pool, config, quietLogger)));
      const n = await app.pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*)::int AS n FROM users WHERE username = 'seeded'`);
      assert.equal(n, 1);
      const login = await app.clients.auth.login({ username: "seeded", password: "seeded-password" }, {});
      assert.equal(login.superuser, true);
    });

    it("logs out: the token stops working and the revocation is stored", async () => {
      const { token } = await app.clients.auth.login({ username: "admin", password: "admin" }, {});
      assert.deepEqual(await app.clients.auth.logout({}, { apiKey: token }), {});
      await expectError(app.clients.auth.whoAmI({}, { apiKey: token }), status.UNAUTHENTICATED, "unauthenticated");
      await expectError(app.clients.auth.logout({}, { apiKey: token }), status.UNAUTHENTICATED, "unauthenticated");
      const n = await app.pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*)::int AS n FROM revoked_tokens`);
      assert.ok(n >= 1);
    });

    it("answers invalid_credential to Logout without a session", async () => {
      await expectError(app.clients.auth.logout({}), status.INVALID_ARGUMENT, "invalid_credential");
    });
  });

  describe("tenant users", () => {
    it("logs tenant users in to their own realm only, with their scope", async () => {
      const t = `${p}_realm`;
      await tenantWithUsers(t);
      const ann = await app.clients.auth.login({ tenant: t.toUpperCase(), username: "ann", password: PASSWORD }, {});
      assert.equal(ann.tenant, t);
      assert.equal(ann.role, "admin");
      assert.equal(ann.superuser, false);
      assert.deepEqual(ann.manageableTenants, [t]);
      const bob = await app.clients.auth.whoAmI({}, { apiKey: (await app.clients.auth.login({ tenant: t, username: "bob", password: PASSWORD }, {})).token });
      assert.deepEqual(bob, { username: "bob", role: "user", tenant: t, superuser: false, manageableTenants: [], credential: "session" });
      await expectError(app.clients.auth.login({ username: "ann", password: PASSWORD }, {}), status.UNAUTHENTICATED, "unauthenticated");
    });

    it("lets a tenant admin create users in its tenant", async () => {
      const t = `${p}_self`;
      const { ann } = await tenantWithUsers(t);
      const user = await app.clients.auth.createUser({ tenant: t, username: "cid", password: PASSWORD }, { apiKey: ann });
      assert.equal(user?.role, "user");
      assert.equal(user?.tenant, t);
      assert.match(user?.id ?? "", /^u-[0-9a-f]{32}$/);
      assert.deepEqual(await auditActions("cid", t), ["user.create"]);
    });

    it("validates CreateUser", async () => {
      const t = `${p}_val`;
      await app.clients.tenants.createTenant({ name: t });
      const cases: [Record<string, string>, status, string][] = [
        [{ tenant: t, username: "has space", password: PASSWORD }, status.INVALID_ARGUMENT, "invalid_username"],
        [{ tenant: t, username: "", password: PASSWORD }, status.INVALID_ARGUMENT, "invalid_username"],
        [{ tenant: t, username: "ok", password: "short" }, status.INVALID_ARGUMENT, "invalid_password"],
        [{ tenant: t, username: "ok", password: "é".repeat(37) }, status.INVALID_ARGUMENT, "invalid_password"],
        [{ tenant: t, username: "ok", password: PASSWORD, role: "root" }, status.INVALID_ARGUMENT, "invalid_role"],
        [{ username: "ok", password: PASSWORD, role: "user" }, status.INVALID_ARGUMENT, "invalid_role"],
        [{ tenant: `${p}_missing`, username: "ok", password: PASSWORD }, status.NOT_FOUND, "not_found"],
      ];
      for (const [request, code, reason] of cases) await expectError(app.clients.auth.createUser(request), code, reason);
      await app.clients.auth.createUser({ tenant: t, username: "dup", password: PASSWORD });
      await expectError(app.clients.auth.createUser({ tenant: t, username: "dup", password: PASSWORD }), status.ALREADY_EXISTS, "exists");
    });

    it("creates users only in db tenants", async () => {
      const t = `${p}_oidc`;
      await app.clients.tenants.createTenant({ name: t, authProvider: "keycloak", authConfig: { issuer: "https://kc.example.com/realms/x", realm: "x", clientId: "qod" } });
      const err = await expectError(app.clients.auth.createUser({ tenant: t, username: "ann", password: PASSWORD }), status.INVALID_ARGUMENT, "invalid_tenant");
      assert.equal(err.violations[0]?.field, "tenant");
    });

    it("creates superusers (no tenant) who log in to the superuser realm", async () => {
      const user = await app.clients.auth.createUser({ username: `${p}_root`, password: PASSWORD });
      assert.equal(user?.role, "admin");
      assert.equal(user?.tenant, "");
      const login = await app.clients.auth.login({ username: `${p}_root`, password: PASSWORD }, {});
      assert.equal(login.superuser, true);
    });

    it("lists a realm's users by username, in pages", async () => {
      const t = `${p}_list`;
      await app.clients.tenants.createTenant({ name: t });
      const names = ["u5", "u1", "u4", "u2", "u3"];
      for (const username of names) await app.clients.auth.createUser({ tenant: t, username, password: PASSWORD });
      const seen: string[] = [];
      let pageToken = "";
      do {
        const page = await app.clients.auth.listUsers({ tenant: t, pageSize: 2, pageToken });
        seen.push(...page.users.map((u) => u.username));
        pageToken = page.nextPageToken;
      } while (pageToken);
      assert.deepEqual(seen, [...names].sort());
      const supers = await app.clients.auth.listUsers({});
      assert.ok(supers.users.some((u) => u.username === "admin" && u.tenant === ""));
      assert.ok(supers.users.every((u) => u.tenant === ""));
      const first = await app.clients.auth.listUsers({ tenant: t, pageSize: 2 });
      await expectError(app.clients.auth.listUsers({ tenant: `${p}_other`, pageToken: first.nextPageToken }), status.INVALID_ARGUMENT, "invalid_page_token");
    });

    it("deletes a user: its sessions and tokens stop working", async () => {
      const t = `${p}_del`;
      const { bob } = await tenantWithUsers(t);
      const pat = await app.clients.auth.createAccessToken({ name: "ci" }, { apiKey: bob });
      assert.deepEqual(await app.clients.auth.deleteUser({ tenant: t, username: "bob" }), {});
      await expectError(app.clients.auth.whoAmI({}, { apiKey: bob }), status.UNAUTHENTICATED, "unauthenticated");
      await expectError(app.clients.auth.whoAmI({}, { apiKey: pat.token }), status.UNAUTHENTICATED, "unauthenticated");
      await expectError(app.clients.auth.deleteUser({ tenant: t, username: "bob" }), status.NOT_FOUND, "not_found");
      assert.deepEqual(await auditActions("bob", t), ["user.create", "user.delete"]);
    });

    it("refuses logins, sessions and tokens of a disabled tenant, and accepts them again once enabled", async () => {
      const t = `${p}_off`;
      const { ann } = await tenantWithUsers(t);
      const pat = await app.clients.auth.createAccessToken({ name: "ci" }, { apiKey: ann });
      await app.clients.tenants.setTenantDisabled({ name: t, disabled: true });
      await expectError(app.clients.auth.login({ tenant: t, username: "ann", password: PASSWORD }, {}), status.UNAUTHENTICATED, "unauthenticated");
      await expectError(app.clients.auth.whoAmI({}, { apiKey: ann }), status.UNAUTHENTICATED, "unauthenticated");
      await expectError(app.clients.auth.whoAmI({}, { apiKey: pat.token }), status.UNAUTHENTICATED, "unauthenticated");
      await app.clients.tenants.setTenantDisabled({ name: t, disabled: false });
      assert.equal((await app.clients.auth.whoAmI({}, { apiKey: ann })).username, "ann");
      assert.equal((await app.clients.auth.whoAmI({}, { apiKey: pat.token })).credential, "access_token");
      await app.clients.auth.login({ tenant: t, username: "ann", password: PASSWORD }, {});
    });

    it("refuses password logins of a tenant whose users moved to an OIDC provider", async () => {
      const t = `${p}_moved`;
      await tenantWithUsers(t);
      await app.clients.tenants.setTenantAuth({ name: t, authProvider: "google", authConfig: { issuer: "https://accounts.google.com", hd: "example.com", clientId: "qod" } });
      await expectError(app.clients.auth.login({ tenant: t, username: "ann", password: PASSWORD }, {}), status.UNAUTHENTICATED, "unauthenticated");
    });
  });

  describe("ChangePassword", () => {
    it("changes the caller's own password when the current one is right", async () => {
      const t = `${p}_pw`;
      const { bob } = await tenantWithUsers(t);
      const next = "a brand new password";
      await expectError(
        app.clients.auth.changePassword({ currentPassword: "not it at all", newPassword: next }, { apiKey: bob }),
        status.INVALID_ARGUMENT,
        "invalid_current_password",
      );
      assert.deepEqual(await app.clients.auth.changePassword({ currentPassword: PASSWORD, newPassword: next }, { apiKey: bob }), {});
      await expectError(app.clients.auth.login({ tenant: t, username: "bob", password: PASSWORD }, {}), status.UNAUTHENTICATED, "unauthenticated");
      await app.clients.auth.login({ tenant: t, username: "bob", password: next }, {});
      // Naming oneself explicitly is the same call.
      await app.clients.auth.changePassword({ tenant: t, username: "bob", currentPassword: next, newPassword: PASSWORD }, { apiKey: bob });
      assert.deepEqual(await auditActions("bob", t), ["user.create", "user.password_change", "user.password_change"]);
    });

    it("ends the account's other sessions; the one that made the change, new logins and access tokens go on", async () => {
      const t = `${p}_pws`;
      const { bob, ann } = await tenantWithUsers(t);
      const other = (await app.clients.auth.login({ tenant: t, username: "bob", password: PASSWORD }, {})).token;
      const pat = await app.clients.auth.createAccessToken({ name: "ci" }, { apiKey: bob });
      await app.clients.auth.changePassword({ currentPassword: PASSWORD, newPassword: "a brand new password" }, { apiKey: bob });
      assert.equal((await app.clients.auth.whoAmI({}, { apiKey: bob })).username, "bob", "the session that made the change");
      await expectError(app.clients.auth.whoAmI({}, { apiKey: other }), status.UNAUTHENTICATED, "unauthenticated");
      await expectError(app.clients.auth.whoAmI({}, { bearer: other }), status.UNAUTHENTICATED, "unauthenticated");
      assert.equal((await app.clients.auth.whoAmI({}, { apiKey: pat.token })).credential, "access_token");
      assert.equal((await app.clients.auth.whoAmI({}, { apiKey: ann })).username, "ann", "another user's session");
      const fresh = (await app.clients.auth.login({ tenant: t, username: "bob", password: "a brand new password" }, {})).token;
      assert.equal((await app.clients.auth.whoAmI({}, { apiKey: fresh })).username, "bob");
      // A change made with an access token keeps no session.
      await app.clients.auth.changePassword({ currentPassword: "a brand new password", newPassword: PASSWORD }, { apiKey: pat.token });
      await expectError(app.clients.auth.whoAmI({}, { apiKey: bob }), status.UNAUTHENTICATED, "unauthenticated");
      await expectError(app.clients.auth.whoAmI({}, { apiKey: fresh }), status.UNAUTHENTICATED, "unauthenticated");
      const again = (await app.clients.auth.login({ tenant: t, username: "bob", password: PASSWORD }, {})).token;
      assert.equal((await app.clients.auth.whoAmI({}, { apiKey: again })).username, "bob");
    });

    it("validates the new password", async () => {
      const { bob } = await tenantWithUsers(`${p}_pwv`);
      await expectError(app.clients.auth.changePassword({ currentPassword: PASSWORD, newPassword: "short" }, { apiKey: bob }), status.INVALID_ARGUMENT, "invalid_password");
      await expectError(app.clients.auth.changePassword({ currentPassword: PASSWORD, newPassword: PASSWORD }, { apiKey: bob }), status.INVALID_ARGUMENT, "invalid_password");
      await expectError(app.clients.auth.changePassword({ newPassword: "long enough now" }, { apiKey: bob }), status.INVALID_ARGUMENT, "invalid_password");
    });

    it("never changes another account's password, not even for admins", async () => {
      const t = `${p}_pwo`;
      const { ann } = await tenantWithUsers(t);
      const request = { tenant: t, username: "bob", currentPassword: PASSWORD, newPassword: "something else entirely" };
      await expectError(app.clients.auth.changePassword(request, { apiKey: ann }), status.INVALID_ARGUMENT, "invalid_username");
      const admin = (await app.clients.auth.login({ username: "admin", password: "admin" }, {})).token;
      await expectError(app.clients.auth.changePassword(request, { apiKey: admin }), status.PERMISSION_DENIED, "tenant_forbidden");
      await expectError(app.clients.auth.changePassword(request), status.INVALID_ARGUMENT, "invalid_credential");
      await app.clients.auth.login({ tenant: t, username: "bob", password: PASSWORD }, {});
    });

    it("keeps a changed bootstrap password across a restart while QOD_ADMIN_PASSWORD is unset (test/admin-password.test.ts has the rest)", async () => {
      let running = await startTestApp();
      try {
        const { token } = await running.clients.auth.login({ username: "admin", password: "admin" }, {});
        await running.clients.auth.changePassword({ currentPassword: "admin", newPassword: "changed-admin-pw" }, { apiKey: token });
        running = await running.restart();
        await running.clients.auth.login({ username: "admin", password: "changed-admin-pw" }, {});
        await expectError(running.clients.auth.login({ username: "admin", password: "admin" }, {}), status.UNAUTHENTICATED, "unauthenticated");
      } finally {
        await running.stop();
      }
    });
  });

  describe("personal access tokens", () => {
    let ann: string;
    const t = `${p}_pat`;
    before(async () => {
      ({ ann } = await tenantWithUsers(t));
    });

    it("creates a token shown once, stores only its SHA-256, and accepts it as X-API-Key", async () => {
      const before = Date.now();
      const created = await app.clients.auth.createAccessToken({ name: "laptop" }, { apiKey: ann });
      assert.match(created.token, /^qod_pat_[A-Za-z0-9_-]{43}$/);
      assert.match(created.id, /^pat-[0-9a-f]{32}$/);
      const ninetyDays = 90 * 86400_000;
      assert.ok(created.expireTime && Math.abs(created.expireTime.getTime() - (before + ninetyDays)) < 5000);
      const stored = await app.pool.oneFirst(sql.type(z.object({ token_hash: z.instanceof(Buffer) }))`
        SELECT token_hash FROM access_tokens WHERE id = ${created.id}`);
      assert.deepEqual(stored, createHash("sha256").update(created.token).digest());
      const who = await app.clients.auth.whoAmI({}, { apiKey: created.token });
      assert.deepEqual(who, { username: "ann", role: "admin", tenant: t, superuser: false, manageableTenants: [t], credential: "access_token" });
      // It carries its owner's scope.
      await app.clients.pools.listPools({ tenant: t }, { apiKey: created.token });
      assert.deepEqual(await auditActions(created.id, t), ["pat.create"]);
    });

    it("lists the caller's tokens newest first, without secrets, with their last use", async () => {
      const first = await app.clients.auth.createAccessToken({ name: "one" }, { apiKey: ann });
      const second = await app.clients.auth.createAccessToken({ name: "two", expireTime: new Date(Date.now() + 86400_000) }, { apiKey: ann });
      await app.clients.auth.whoAmI({}, { apiKey: first.token });
      const { tokens } = await app.clients.auth.listAccessTokens({}, { apiKey: ann });
      const ids = tokens.map((tk) => tk.id);
      assert.ok(ids.indexOf(second.id) < ids.indexOf(first.id));
      const listedFirst = tokens.find((tk) => tk.id === first.id);
      assert.ok(listedFirst?.lastUseTime);
      assert.equal(tokens.find((tk) => tk.id === second.id)?.lastUseTime, undefined);
      assert.equal(JSON.stringify(tokens).includes(first.token), false);
    });

    it("stamps the last use at most once a minute", async () => {
      const created = await app.clients.auth.createAccessToken({ name: "busy" }, { apiKey: ann });
      const lastUse = () => app.pool.oneFirst(sql.type(z.object({ last_used_at: z.number().nullable() }))`
        SELECT last_used_at FROM access_tokens WHERE id = ${created.id}`);
      await app.clients.auth.whoAmI({}, { apiKey: created.token });
      const stamped = await lastUse();
      assert.ok(stamped);
      await app.clients.auth.whoAmI({}, { apiKey: created.token });
      assert.equal(await lastUse(), stamped);
      await app.pool.query(sql.typeAlias("void")`UPDATE access_tokens SET last_used_at = now() - interval '2 minutes' WHERE id = ${created.id}`);
      await app.clients.auth.whoAmI({}, { apiKey: created.token });
      assert.ok(((await lastUse()) ?? 0) > stamped);
    });

    it("revokes a token: it stops working, stays listed as revoked, and a second revoke is harmless", async () => {
      const created = await app.clients.auth.createAccessToken({ name: "old" }, { apiKey: ann });
      assert.deepEqual(await app.clients.auth.revokeAccessToken({ id: created.id }, { apiKey: ann }), {});
      await expectError(app.clients.auth.whoAmI({}, { apiKey: created.token }), status.UNAUTHENTICATED, "unauthenticated");
      const { tokens } = await app.clients.auth.listAccessTokens({}, { apiKey: ann });
      assert.equal(tokens.find((tk) => tk.id === created.id)?.revoked, true);
      assert.deepEqual(await app.clients.auth.revokeAccessToken({ id: created.id }, { apiKey: ann }), {});
      assert.deepEqual(await auditActions(created.id, t), ["pat.create", "pat.revoke", "pat.revoke"]);
    });

    it("treats another user's token as not found", async () => {
      const theirs = await app.clients.auth.createAccessToken({ name: "bob's" }, { apiKey: (await app.clients.auth.login({ tenant: t, username: "bob", password: PASSWORD }, {})).token });
      await expectError(app.clients.auth.revokeAccessToken({ id: theirs.id }, { apiKey: ann }), status.NOT_FOUND, "not_found");
      await expectError(app.clients.auth.revokeAccessToken({ id: `pat-${"0".repeat(32)}` }, { apiKey: ann }), status.NOT_FOUND, "not_found");
      const { tokens } = await app.clients.auth.listAccessTokens({}, { apiKey: ann });
      assert.equal(tokens.some((tk) => tk.id === theirs.id), false);
      await app.clients.auth.whoAmI({}, { apiKey: theirs.token });
    });

    it("manages tokens only from a session: not with the static key or an access token", async () => {
      const created = await app.clients.auth.createAccessToken({ name: "pat" }, { apiKey: ann });
      await expectError(app.clients.auth.createAccessToken({ name: "x" }), status.INVALID_ARGUMENT, "invalid_credential");
      await expectError(app.clients.auth.createAccessToken({ name: "x" }, { apiKey: created.token }), status.INVALID_ARGUMENT, "invalid_credential");
      await expectError(app.clients.auth.listAccessTokens({}, { apiKey: created.token }), status.INVALID_ARGUMENT, "invalid_credential");
      await expectError(app.clients.auth.revokeAccessToken({ id: created.id }, { apiKey: created.token }), status.INVALID_ARGUMENT, "invalid_credential");
    });

    it("validates CreateAccessToken and RevokeAccessToken", async () => {
      await expectError(app.clients.auth.createAccessToken({ name: " " }, { apiKey: ann }), status.INVALID_ARGUMENT, "invalid_name");
      await expectError(app.clients.auth.createAccessToken({ name: "x".repeat(101) }, { apiKey: ann }), status.INVALID_ARGUMENT, "invalid_name");
      await expectError(app.clients.auth.createAccessToken({ name: "past", expireTime: new Date(Date.now() - 1000) }, { apiKey: ann }), status.INVALID_ARGUMENT, "invalid_expire_time");
      await expectError(
        app.clients.auth.createAccessToken({ name: "forever", expireTime: new Date(Date.now() + 400 * 86400_000) }, { apiKey: ann }),
        status.INVALID_ARGUMENT,
        "invalid_expire_time",
      );
      await expectError(app.clients.auth.createAccessToken({ name: "nan", expireTime: new Date(8.64e15) }, { apiKey: ann }), status.INVALID_ARGUMENT, "invalid_expire_time");
      await expectError(app.clients.auth.revokeAccessToken({ id: "nope" }, { apiKey: ann }), status.INVALID_ARGUMENT, "invalid_id");
    });
  });
});
