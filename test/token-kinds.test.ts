// Hole 1 of issue 11: token kinds are told apart by their own claims. A session token (even a
// logged-out one, even with QOD_SESSION_JWT_SECRET equal to API_JWT_SECRET, which loadConfig
// refuses) is never accepted as a service JWT, over gRPC and REST alike.
import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { z } from "zod";
import { ConfigError, loadConfig } from "../src/config";
import { sql } from "../src/db/sql";
import { startTestApp, TEST_API_JWT_SECRET, TEST_SESSION_SECRET, type TestApp } from "./helpers/app";
import { expectError, type CallOptions } from "./helpers/clients";
import { uniquePrefix } from "./helpers/postgres";
import { expectRestError, rest } from "./helpers/rest";
import { mintServiceToken, mintSessionToken, superuserId } from "./helpers/tokens";

describe("token kinds (issue 11, hole 1)", () => {
  it("refuses to start with QOD_SESSION_JWT_SECRET equal to API_JWT_SECRET, naming both", () => {
    assert.throws(
      () => loadConfig({ QOD_SESSION_JWT_SECRET: TEST_API_JWT_SECRET, API_JWT_SECRET: TEST_API_JWT_SECRET }),
      (err: unknown) => err instanceof ConfigError && err.message.includes("QOD_SESSION_JWT_SECRET") && err.message.includes("API_JWT_SECRET"),
    );
  });

  describe("with one secret for both kinds (forced past loadConfig)", () => {
    let app: TestApp;
    const tenant = uniquePrefix("tk");
    const PASSWORD = "a plain user's password";
    let userToken: string;

    /** Over gRPC and REST: the credential is refused with 401 / UNAUTHENTICATED. */
    async function refusedEverywhere(auth: CallOptions): Promise<void> {
      await expectError(app.clients.auth.whoAmI({}, auth), status.UNAUTHENTICATED, "unauthenticated");
      await expectError(app.clients.tenants.createTenant({ name: `${tenant}x` }, auth), status.UNAUTHENTICATED, "unauthenticated");
      expectRestError(await rest(app, "GET", "/api/auth/whoami", { auth }), 401, status.UNAUTHENTICATED, "unauthenticated");
      expectRestError(await rest(app, "POST", "/api/user/create", { auth, body: { username: `${tenant}su`, password: "superuser password" } }), 401, status.UNAUTHENTICATED, "unauthenticated");
    }

    before(async () => {
      app = await startTestApp({ configure: (config) => ({ ...config, sessionJwtSecret: config.apiJwtSecret }) });
      await app.clients.tenants.createTenant({ name: tenant });
      await app.clients.auth.createUser({ tenant, username: "plain", password: PASSWORD, role: "user" });
      userToken = (await app.clients.auth.login({ tenant, username: "plain", password: PASSWORD }, {})).token;
    });
    after(async () => {
      await app.stop();
    });

    it("takes a live session token as a Bearer token for the session it is, never a service credential", async () => {
      const who = await app.clients.auth.whoAmI({}, { bearer: userToken });
      assert.deepEqual([who.credential, who.superuser, who.username], ["session", false, "plain"]);
      const res = await rest(app, "GET", "/api/auth/whoami", { auth: { bearer: userToken } });
      assert.deepEqual([(res.json as { credential: string }).credential, (res.json as { superuser: boolean }).superuser], ["session", false]);
    });

    it("refuses a logged-out plain user's session token as a Bearer token (it used to become a superuser service credential)", async () => {
      await app.clients.auth.logout({}, { apiKey: userToken });
      await refusedEverywhere({ bearer: userToken });
      assert.equal(await app.pool.exists(usersNamed(`${tenant}su`)), false, "no superuser was created");
    });

    it("refuses a service-typed token that carries a session's issuer or audience", async () => {
      const sub = await superuserId(app.pool);
      await refusedEverywhere({ bearer: await mintServiceToken({ iss: "qod", aud: "qod-session", sub, jti: "x" }) });
      await refusedEverywhere({ bearer: await mintServiceToken({ aud: ["other", "qod-session"] }) });
      await refusedEverywhere({ bearer: await mintServiceToken({ iss: "qod" }) });
    });

    it("refuses a session token typed as a plain JWT (as sessions were signed before), in X-API-Key and as a Bearer token", async () => {
      const forged = await mintSessionToken({ sub: await superuserId(app.pool), typ: "JWT", secret: TEST_API_JWT_SECRET });
      await refusedEverywhere({ apiKey: forged });
      await refusedEverywhere({ bearer: forged });
    });
  });

  describe("with separate secrets", () => {
    let app: TestApp;
    before(async () => {
      app = await startTestApp();
    });
    after(async () => {
      await app.stop();
    });

    it("refuses a service JWT without a header type, or with another one", async () => {
      for (const typ of [null, "at+jwt", "qod-session+jwt"]) {
        const auth = { bearer: await mintServiceToken({}, { typ }) };
        await expectError(app.clients.auth.whoAmI({}, auth), status.UNAUTHENTICATED, "unauthenticated");
        expectRestError(await rest(app, "GET", "/api/auth/whoami", { auth }), 401, status.UNAUTHENTICATED, "unauthenticated");
      }
    });

    it("still accepts a proper service JWT, and a session token from Login, as Bearer tokens", async () => {
      assert.equal((await app.clients.auth.whoAmI({}, { bearer: await mintServiceToken() })).credential, "service_jwt");
      const { token } = await app.clients.auth.login({ username: "admin", password: "admin" }, {});
      assert.equal((await app.clients.auth.whoAmI({}, { bearer: token })).credential, "session");
      assert.notEqual(TEST_SESSION_SECRET, TEST_API_JWT_SECRET);
    });
  });
});

const usersNamed = (username: string) => sql.type(z.object({ exists: z.boolean() }))`SELECT 1 FROM users WHERE username = ${username}`;
