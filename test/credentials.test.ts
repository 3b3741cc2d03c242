import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { sql } from "../src/db/sql";
import { startTestApp, TEST_SESSION_SECRET, type TestApp } from "./helpers/app";
import { expectError, type CallOptions } from "./helpers/clients";
import { badSessionCredentials, GARBAGE_CREDENTIALS, mintServiceToken, mintSessionToken, now, superuserId, type SessionTokenOptions } from "./helpers/tokens";

describe("credentials", () => {
  let app: TestApp;
  let adminId: string;

  /** A session token as Login makes it, with the given changes. */
  const sessionToken = (options: Partial<SessionTokenOptions> = {}) => mintSessionToken({ sub: adminId, ...options });

  const refused = (options: CallOptions) => expectError(app.clients.auth.whoAmI({}, options), status.UNAUTHENTICATED, "unauthenticated");
  const login = async () => (await app.clients.auth.login({ username: "admin", password: "admin" }, {})).token;

  before(async () => {
    app = await startTestApp();
    adminId = await superuserId(app.pool);
  });
  after(async () => {
    await app.stop();
  });

  describe("session tokens", () => {
    it("accepts a well-formed token signed with the session secret", async () => {
      assert.equal((await app.clients.auth.whoAmI({}, { apiKey: await sessionToken() })).credential, "session");
    });

    for (const [label, credentials] of badSessionCredentials(sessionToken)) {
      it(`refuses ${label}`, async () => {
        for (const options of await credentials()) await refused(options);
      });
    }

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
    it("accepts a Bearer token with exp as a superuser-equivalent service", async () => {
      const who = await app.clients.auth.whoAmI({}, { bearer: await mintServiceToken() });
      assert.deepEqual(who, { username: "billing", role: "admin", tenant: "", superuser: true, manageableTenants: [], credential: "service_jwt" });
    });

    it("refuses a token without exp, an expired one, another key, another algorithm", async () => {
      await refused({ bearer: await mintServiceToken({}, { exp: null }) });
      await refused({ bearer: await mintServiceToken({}, { exp: now() - 10 }) });
      await refused({ bearer: await mintServiceToken({}, { secret: TEST_SESSION_SECRET }) });
      await refused({ bearer: await mintServiceToken({}, { alg: "HS384" }) });
    });

    it("is only accepted as a Bearer token", async () => {
      await refused({ apiKey: await mintServiceToken() });
    });
  });

  describe("anything else", () => {
    it("refuses no credential, a wrong static key, garbage and other schemes", async () => {
      for (const credential of GARBAGE_CREDENTIALS) await refused(credential);
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
