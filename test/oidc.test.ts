import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { SignJWT } from "jose";
import { sql } from "../src/db/sql";
import { startTestApp, type TestApp } from "./helpers/app";
import { expectError } from "./helpers/clients";
import { startTestIssuer, type TestIssuer } from "./helpers/issuer";
import { uniquePrefix } from "./helpers/postgres";

// The issuer runs on plain-http loopback, which TenantService rightly refuses (authConfig.issuer
// must be a public https URL). Tenants are therefore made through the API as `db` tenants with
// their users, then pointed at the loopback issuer with SQL: the state an operator reaches by
// creating users and then calling SetTenantAuth with a real https issuer.
describe("ExchangeOidcToken", () => {
  let app: TestApp;
  let issuer: TestIssuer;
  const p = uniquePrefix("o");
  const AUDIENCE = "qod-client";

  async function oidcTenant(name: string, provider: string, config: Record<string, string>, users: string[] = ["ann"]): Promise<void> {
    await app.clients.tenants.createTenant({ name });
    for (const username of users) await app.clients.auth.createUser({ tenant: name, username, password: "unused password", role: "admin" });
    await app.pool.query(sql.typeAlias("void")`
      UPDATE tenants SET auth_provider = ${provider}, auth_config = ${sql.jsonb({ clientId: AUDIENCE, ...config })} WHERE name = ${name}`);
  }
  const exchange = (tenant: string, idToken: string) => app.clients.auth.exchangeOidcToken({ tenant, idToken }, {});
  const refused = (tenant: string, idToken: string) => expectError(exchange(tenant, idToken), status.UNAUTHENTICATED, "unauthenticated");

  const kc = `${p}_kc`;
  let kcIssuer: string;

  before(async () => {
    issuer = await startTestIssuer();
    app = await startTestApp({ env: { QOD_OIDC_ALLOW_INSECURE: "true" } });
    kcIssuer = `${issuer.base}/realms/${kc}`;
    await oidcTenant(kc, "keycloak", { issuer: kcIssuer, realm: kc, clientId: AUDIENCE }, ["ann", "carol@example.com"]);
  });
  after(async () => {
    await app?.stop();
    await issuer?.close();
  });

  describe("keycloak", () => {
    it("exchanges a valid ID token for a session of the matching user", async () => {
      const idToken = await issuer.sign(kcIssuer, { sub: "kc-1", aud: AUDIENCE, preferred_username: "ann" });
      const session = await exchange(kc, idToken);
      assert.equal(session.username, "ann");
      assert.equal(session.tenant, kc);
      assert.equal(session.role, "admin");
      assert.ok(session.expireTime && session.expireTime.getTime() > Date.now());
      const who = await app.clients.auth.whoAmI({}, { apiKey: session.token });
      assert.deepEqual(who, { username: "ann", role: "admin", tenant: kc, superuser: false, manageableTenants: [kc], credential: "session" });
    });

    it("discovers the issuer once and caches its keys", async () => {
      for (let i = 0; i < 3; i++) await exchange(kc, await issuer.sign(kcIssuer, { aud: AUDIENCE, preferred_username: "ann" }));
      const discoveries = issuer.requests.filter((r) => r === `/realms/${kc}/.well-known/openid-configuration`);
      assert.equal(discoveries.length, 1);
    });

    it("matches by verified email when there is no preferred_username", async () => {
      const verified = await issuer.sign(kcIssuer, { aud: AUDIENCE, email: "carol@example.com", email_verified: true });
      assert.equal((await exchange(kc, verified)).username, "carol@example.com");
      await refused(kc, await issuer.sign(kcIssuer, { aud: AUDIENCE, email: "carol@example.com", email_verified: false }));
      await refused(kc, await issuer.sign(kcIssuer, { aud: AUDIENCE, email: "carol@example.com" }));
    });

    const rejections: [string, (i: TestIssuer, iss: string) => Promise<string>][] = [
      ["another audience", (i, iss) => i.sign(iss, { aud: "someone-else", preferred_username: "ann" })],
      ["no audience", (i, iss) => i.sign(iss, { preferred_username: "ann" })],
      ["an expired token", (i, iss) => i.sign(iss, { aud: AUDIENCE, preferred_username: "ann" }, { expiresIn: Math.floor(Date.now() / 1000) - 60 })],
      ["another issuer", (i) => i.sign(`${i.base}/realms/elsewhere`, { aud: AUDIENCE, preferred_username: "ann" })],
      ["a key the issuer does not publish", (i, iss) => i.sign(iss, { aud: AUDIENCE, preferred_username: "ann" }, { key: i.rogue })],
      ["an unknown key id", (i, iss) => i.sign(iss, { aud: AUDIENCE, preferred_username: "ann" }, { kid: "k9" })],
      [
        "alg none",
        async (i, iss) => {
          const [, payload] = (await i.sign(iss, { aud: AUDIENCE, preferred_username: "ann" })).split(".");
          return `${Buffer.from(JSON.stringify({ alg: "none", kid: "k1" })).toString("base64url")}.${payload}.`;
        },
      ],
      [
        "a shared-secret algorithm",
        (_i, iss) =>
          new SignJWT({ aud: AUDIENCE, preferred_username: "ann" })
            .setProtectedHeader({ alg: "HS256", kid: "k1" })
            .setIssuer(iss)
            .setExpirationTime("5m")
            .sign(new TextEncoder().encode("a-guessable-secret-a-guessable-secret")),
      ],
      ["a name no user of the tenant has", (i, iss) => i.sign(iss, { aud: AUDIENCE, preferred_username: "zed" })],
      ["no name at all", (i, iss) => i.sign(iss, { aud: AUDIENCE, sub: "kc-1" })],
      ["garbage", async () => "not.a.jwt"],
    ];
    for (const [label, make] of rejections) {
      it(`refuses ${label}`, async () => {
        await refused(kc, await make(issuer, kcIssuer));
      });
    }

    it("refuses a realm that the issuer's path does not name", async () => {
      const t = `${p}_realm`;
      await oidcTenant(t, "keycloak", { issuer: kcIssuer, realm: "other" });
      await refused(t, await issuer.sign(kcIssuer, { aud: AUDIENCE, preferred_username: "ann" }));
    });

    it("refuses a token for a disabled tenant", async () => {
      const t = `${p}_off`;
      const iss = `${issuer.base}/realms/${t}`;
      await oidcTenant(t, "keycloak", { issuer: iss, realm: t });
      const idToken = await issuer.sign(iss, { aud: AUDIENCE, preferred_username: "ann" });
      await exchange(t, idToken);
      await app.clients.tenants.setTenantDisabled({ name: t, disabled: true });
      await refused(t, idToken);
    });

    it("refuses another tenant's token, a db tenant and an unknown tenant alike", async () => {
      const idToken = await issuer.sign(kcIssuer, { aud: AUDIENCE, preferred_username: "ann" });
      const t = `${p}_db`;
      await app.clients.tenants.createTenant({ name: t });
      await app.clients.auth.createUser({ tenant: t, username: "ann", password: "a password here" });
      const messages = new Set<string>();
      for (const tenant of [t, `${p}_nope`]) messages.add((await refused(tenant, idToken)).message);
      assert.equal(messages.size, 1);
    });

    it("validates the request", async () => {
      await expectError(exchange(kc, ""), status.INVALID_ARGUMENT, "invalid_id_token");
      await expectError(exchange("", "x.y.z"), status.INVALID_ARGUMENT, "invalid_id");
    });
  });

  describe("provider tenant claims", () => {
    const cases: { provider: string; path: string; config: (iss: string) => Record<string, string>; good: Record<string, unknown>; bad: Record<string, unknown> }[] = [
      { provider: "google", path: "/google", config: (iss) => ({ issuer: iss, hd: "example.com" }), good: { hd: "example.com" }, bad: { hd: "evil.com" } },
      { provider: "azure", path: "/azure/tid-1/v2.0", config: (iss) => ({ issuer: iss, tenantId: "tid-1" }), good: { tid: "tid-1" }, bad: { tid: "tid-2" } },
      {
        provider: "aws",
        path: "/aws/eu-west-1_pool",
        config: (iss) => ({ issuer: iss, userPoolId: "eu-west-1_pool" }),
        good: { token_use: "id" },
        bad: { token_use: "access" },
      },
    ];
    for (const c of cases) {
      it(`${c.provider}: accepts the configured tenant claim and refuses another`, async () => {
        const t = `${p}_${c.provider}`;
        const iss = `${issuer.base}${c.path}`;
        await oidcTenant(t, c.provider, c.config(iss));
        assert.equal((await exchange(t, await issuer.sign(iss, { aud: AUDIENCE, preferred_username: "ann", ...c.good }))).username, "ann");
        await refused(t, await issuer.sign(iss, { aud: AUDIENCE, preferred_username: "ann", ...c.bad }));
        await refused(t, await issuer.sign(iss, { aud: AUDIENCE, preferred_username: "ann" }));
      });
    }

    it("aws: refuses a user pool the issuer does not end with", async () => {
      const t = `${p}_awsx`;
      const iss = `${issuer.base}/aws/eu-west-1_pool`;
      await oidcTenant(t, "aws", { issuer: iss, userPoolId: "eu-west-1_other" });
      await refused(t, await issuer.sign(iss, { aud: AUDIENCE, preferred_username: "ann", token_use: "id" }));
    });
  });

  describe("SSRF guard (QOD_OIDC_ALLOW_INSECURE unset)", () => {
    it("fetches nothing from an http or loopback issuer", async () => {
      const strict = await startTestApp();
      try {
        const t = `${p}_strict`;
        const iss = `${issuer.base}/realms/${t}`;
        await strict.clients.tenants.createTenant({ name: t });
        await strict.clients.auth.createUser({ tenant: t, username: "ann", password: "a password here" });
        const idToken = await issuer.sign(iss, { aud: AUDIENCE, preferred_username: "ann" });
        const served = issuer.requests.length;
        for (const config of [
          { issuer: iss, realm: t, clientId: AUDIENCE },
          { issuer: iss.replace("http:", "https:"), realm: t, clientId: AUDIENCE },
          { issuer: iss.replace("http://127.0.0.1", "https://localhost"), realm: t, clientId: AUDIENCE },
        ]) {
          await strict.pool.query(sql.typeAlias("void")`
            UPDATE tenants SET auth_provider = 'keycloak', auth_config = ${sql.jsonb(config)} WHERE name = ${t}`);
          await expectError(strict.clients.auth.exchangeOidcToken({ tenant: t, idToken }, {}), status.UNAUTHENTICATED, "unauthenticated");
        }
        assert.equal(issuer.requests.length, served);
      } finally {
        await strict.stop();
      }
    });
  });
});
