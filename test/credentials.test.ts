import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { SignJWT } from "jose";
import { z } from "zod";
import { sql } from "../src/db/sql";
import { startTestApp, TEST_API_JWT_SECRET, TEST_API_KEY, TEST_SESSION_SECRET, type TestApp } from "./helpers/app";
import { expectError, type CallOptions } from "./helpers/clients";

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
const key = (secret: string) => new TextEncoder().encode(secret);
const now = () => Math.floor(Date.now() / 1000);

describe("credentials", () => {
  let app: TestApp;
  let adminId: string;

  /** A session token as Login makes it, with the given changes. */
  function sessionToken(options: { claims?: Record<string, unknown>; sub?: string; alg?: string; secret?: string; exp?: number } = {}): Promise<string> {
    const jwt = new SignJWT({ name: "admin", tenant: null, role: "admin", scope: "superuser", ...options.claims })
      .setProtectedHeader({ alg: options.alg ?? "HS256", typ: "JWT" })
      .setIssuer("qod")
      .setAudience("qod-session")
      .setSubject(options.sub ?? adminId)
      .setJti(`test-${Math.random()}`)
      .setIssuedAt()
      .setExpirationTime(options.exp ?? now() + 600);
    return jwt.sign(key(options.secret ?? TEST_SESSION_SECRET));
  }

  const refused = (options: CallOptions) => expectError(app.clients.auth.whoAmI({}, options), status.UNAUTHENTICATED, "unauthenticated");
  const login = async () => (await app.clients.auth.login({ username: "admin", password: "admin" }, {})).token;

  before(async () => {
    app = await startTestApp();
    adminId = await app.pool.oneFirst(sql.type(z.object({ id: z.string() }))`SELECT id FROM users WHERE tenant IS NULL AND username = 'admin'`);
  });
  after(async () => {
    await app.stop();
  });

  describe("session tokens", () => {
    it("accepts a well-formed token signed with the session secret", async () => {
      assert.equal((await app.clients.auth.whoAmI({}, { apiKey: await sessionToken() })).credential, "session");
    });

    it("refuses an expired token", async () => {
      await refused({ apiKey: await sessionToken({ exp: now() - 10 }) });
    });

    it("refuses a token signed with another key", async () => {
      await refused({ apiKey: await sessionToken({ secret: "another-secret-another-secret-0123456789" }) });
      await refused({ apiKey: await sessionToken({ secret: TEST_API_JWT_SECRET }) });
    });

    it("refuses `alg: none`", async () => {
      const [, payload] = (await sessionToken()).split(".");
      await refused({ apiKey: `${b64({ alg: "none", typ: "JWT" })}.${payload}.` });
      await refused({ bearer: `${b64({ alg: "none", typ: "JWT" })}.${payload}.` });
    });

    it("refuses another algorithm, even with the right secret", async () => {
      await refused({ apiKey: await sessionToken({ alg: "HS512" }) });
    });

    it("refuses a tampered payload", async () => {
      const [header, payload, signature] = (await sessionToken({ claims: { role: "user" } })).split(".");
      const claims = JSON.parse(Buffer.from(payload ?? "", "base64url").toString()) as Record<string, unknown>;
      await refused({ apiKey: `${header}.${b64({ ...claims, role: "admin" })}.${signature}` });
      await refused({ apiKey: `${header}.${b64({ ...claims, exp: now() + 999_999 })}.${signature}` });
    });

    it("refuses a token without jti, for another audience, or naming no user", async () => {
      const noJti = await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setIssuer("qod").setAudience("qod-session").setSubject(adminId).setExpirationTime("5m").sign(key(TEST_SESSION_SECRET));
      await refused({ apiKey: noJti });
      const otherAudience = await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setIssuer("qod").setAudience("other").setSubject(adminId).setJti("x").setExpirationTime("5m").sign(key(TEST_SESSION_SECRET));
      await refused({ apiKey: otherAudience });
      await refused({ apiKey: await sessionToken({ sub: "u-00000000000000000000000000000000" }) });
    });

    it("keeps a logout across a restart, while other sessions survive it", async () => {
      const revoked = await login();
      const kept = await login();
      await app.clients.auth.logout({}, { apiKey: revoked });
      await refused({ apiKey: revoked });
      app = await app.restart();
      await refused({ apiKey: revoked });
      await refused({ bearer: revoked });
      assert.equal((await app.clients.auth.whoAmI({}, { apiKey: kept })).username, "admin");
    });
  });

  describe("personal access tokens", () => {
    let session: string;
    before(async () => {
      session = await login();
    });

    it("refuses a revoked token", async () => {
      const pat = await app.clients.auth.createAccessToken({ name: "r" }, { apiKey: session });
      await app.clients.auth.revokeAccessToken({ id: pat.id }, { apiKey: session });
      await refused({ apiKey: pat.token });
    });

    it("refuses an expired token", async () => {
      const pat = await app.clients.auth.createAccessToken({ name: "e" }, { apiKey: session });
      await app.pool.query(sql.typeAlias("void")`UPDATE access_tokens SET expires_at = now() - interval '1 second' WHERE id = ${pat.id}`);
      await refused({ apiKey: pat.token });
    });

    it("refuses a token that was never issued, or is malformed", async () => {
      await refused({ apiKey: `qod_pat_${"A".repeat(43)}` });
      await refused({ apiKey: "qod_pat_short" });
    });

    it("is not accepted as a Bearer token", async () => {
      const pat = await app.clients.auth.createAccessToken({ name: "b" }, { apiKey: session });
      await refused({ bearer: pat.token });
    });
  });

  describe("service JWTs (API_JWT_SECRET)", () => {
    const serviceToken = (claims: Record<string, unknown> = {}, options: { alg?: string; secret?: string; exp?: number | null } = {}) => {
      const jwt = new SignJWT({ role: "service_role", ...claims }).setProtectedHeader({ alg: options.alg ?? "HS256", typ: "JWT" }).setSubject("billing");
      if (options.exp !== null) jwt.setExpirationTime(options.exp ?? now() + 600);
      return jwt.sign(key(options.secret ?? TEST_API_JWT_SECRET));
    };

    it("accepts a Bearer token with exp as a superuser-equivalent service", async () => {
      const who = await app.clients.auth.whoAmI({}, { bearer: await serviceToken() });
      assert.deepEqual(who, { username: "billing", role: "admin", tenant: "", superuser: true, manageableTenants: [], credential: "service_jwt" });
    });

    it("refuses a token without exp, an expired one, another key, another algorithm", async () => {
      await refused({ bearer: await serviceToken({}, { exp: null }) });
      await refused({ bearer: await serviceToken({}, { exp: now() - 10 }) });
      await refused({ bearer: await serviceToken({}, { secret: TEST_SESSION_SECRET }) });
      await refused({ bearer: await serviceToken({}, { alg: "HS384" }) });
    });

    it("is only accepted as a Bearer token", async () => {
      await refused({ apiKey: await serviceToken() });
    });
  });

  describe("anything else", () => {
    it("refuses no credential, a wrong static key, garbage and other schemes", async () => {
      await refused({});
      await refused({ apiKey: `${TEST_API_KEY}x` });
      await refused({ apiKey: "not-a-token" });
      await refused({ headers: { authorization: `Basic ${Buffer.from("admin:admin").toString("base64")}` } });
      await refused({ headers: { authorization: "Bearer" } });
      await refused({ bearer: "a.b.c" });
    });

    it("lets X-API-Key decide when both headers are sent", async () => {
      await refused({ apiKey: "wrong", bearer: await login() });
    });

    it("says nothing of why a credential was refused", async () => {
      const messages = new Set<string>();
      for (const options of [{}, { apiKey: "nope" }, { apiKey: await sessionToken({ exp: now() - 10 }) }, { bearer: "a.b.c" }]) {
        messages.add((await refused(options)).message);
      }
      assert.equal(messages.size, 1);
    });
  });
});
