import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { ServiceError } from "@grpc/grpc-js";
import { SignJWT } from "jose";
import { z } from "zod";
import { sql } from "../src/db/sql";
import { createLogger } from "../src/logger";
import { startTestApp, type TestApp } from "./helpers/app";
import { decodeError, type CallOptions } from "./helpers/clients";
import { uniquePrefix } from "./helpers/postgres";

// Plants recognisable secrets, runs the auth flows (failures included, and two induced
// internal errors), and scans every log line and every response for them.
describe("secrets never leak", () => {
  let app: TestApp;
  const p = uniquePrefix("l");
  const t = `${p}_acme`;
  const logLines: string[] = [];
  /** Every response or error status, with the label of the call that produced it. */
  const responses: { label: string; text: string }[] = [];
  const secret = {
    adminPassword: "PLANTED-admin-pw-Zq81",
    apiKey: "PLANTED-static-key-Xy72-0123456789",
    sessionSecret: "PLANTED-session-secret-Lm55-0123456789abcdef",
    apiJwtSecret: "PLANTED-api-jwt-secret-Qw33-0123456789abcdef",
    userPassword: "PLANTED-user-pw-Ab12",
    newPassword: "PLANTED-new-pw-Cd34",
    wrongPassword: "PLANTED-wrong-pw-Ef56",
    tooLong: `PLANTED-too-long-${"x".repeat(80)}`,
    bogusKey: "PLANTED-bogus-key-Gh78",
    wrongJwtKey: "PLANTED-wrong-jwt-key-Ij90-0123456789abcdef",
  };
  /** Tokens met during the run, each allowed only in the response that issued it. */
  const tokens: { value: string; issuedBy: string }[] = [];
  const hashes: string[] = [];

  async function record(label: string, call: Promise<unknown>): Promise<unknown> {
    try {
      const response = await call;
      responses.push({ label, text: JSON.stringify(response) });
      return response;
    } catch (err) {
      const decoded = decodeError(err as ServiceError);
      responses.push({ label, text: JSON.stringify(decoded) });
      return undefined;
    }
  }
  const auth = () => app.clients.auth;
  const as = (apiKey: string): CallOptions => ({ apiKey });
  const staticKey = as(secret.apiKey);

  before(async () => {
    const logger = createLogger("trace", { write: (line: string) => void logLines.push(line) });
    app = await startTestApp({
      logger,
      env: {
        QOD_ADMIN_PASSWORD: secret.adminPassword,
        QOD_API_KEY: secret.apiKey,
        QOD_SESSION_JWT_SECRET: secret.sessionSecret,
        API_JWT_SECRET: secret.apiJwtSecret,
      },
    });

    await record("login-wrong", auth().login({ username: "admin", password: secret.wrongPassword }, {}));
    const admin = (await record("login-admin", auth().login({ username: "admin", password: secret.adminPassword }, {}))) as { token: string };
    tokens.push({ value: admin.token, issuedBy: "login-admin" });
    await record("whoami-admin", auth().whoAmI({}, as(admin.token)));

    await record("tenant", app.clients.tenants.createTenant({ name: t }, staticKey));
    await record("user", auth().createUser({ tenant: t, username: "ann", password: secret.userPassword, role: "admin" }, staticKey));
    await record("user-dup", auth().createUser({ tenant: t, username: "ann", password: secret.userPassword }, staticKey));
    await record("user-long", auth().createUser({ tenant: t, username: "bob", password: secret.tooLong }, staticKey));
    hashes.push(
      ...(await app.pool.anyFirst(sql.type(z.object({ password_hash: z.string() }))`SELECT password_hash FROM users WHERE tenant = ${t} OR tenant IS NULL`)),
    );

    await record("login-ann-wrong", auth().login({ tenant: t, username: "ann", password: secret.wrongPassword }, {}));
    await record("login-ann-long", auth().login({ tenant: t, username: "ann", password: secret.tooLong }, {}));
    const ann = (await record("login-ann", auth().login({ tenant: t, username: "ann", password: secret.userPassword }, {}))) as { token: string };
    tokens.push({ value: ann.token, issuedBy: "login-ann" });
    await record("pw-wrong", auth().changePassword({ currentPassword: secret.wrongPassword, newPassword: secret.newPassword }, as(ann.token)));
    await record("pw-same", auth().changePassword({ currentPassword: secret.userPassword, newPassword: secret.userPassword }, as(ann.token)));
    await record("pw-long", auth().changePassword({ currentPassword: secret.userPassword, newPassword: secret.tooLong }, as(ann.token)));
    await record("pw", auth().changePassword({ currentPassword: secret.userPassword, newPassword: secret.newPassword }, as(ann.token)));
    hashes.push(await app.pool.oneFirst(sql.type(z.object({ password_hash: z.string() }))`SELECT password_hash FROM users WHERE tenant = ${t} AND username = 'ann'`));

    const pat = (await record("pat", auth().createAccessToken({ name: "ci" }, as(ann.token)))) as { id: string; token: string };
    tokens.push({ value: pat.token, issuedBy: "pat" });
    const patHash = createHash("sha256").update(pat.token).digest();
    hashes.push(patHash.toString("hex"), patHash.toString("base64"), patHash.toString("base64url"), `\\x${patHash.toString("hex")}`);
    await record("whoami-pat", auth().whoAmI({}, as(pat.token)));
    await record("pat-list", auth().listAccessTokens({}, as(ann.token)));
    await record("pat-by-pat", auth().createAccessToken({ name: "nested" }, as(pat.token)));
    await record("pat-revoke", auth().revokeAccessToken({ id: pat.id }, as(ann.token)));
    await record("whoami-revoked-pat", auth().whoAmI({}, as(pat.token)));

    const service = await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject("svc").setExpirationTime("5m").sign(new TextEncoder().encode(secret.apiJwtSecret));
    const forged = await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject("svc").setExpirationTime("5m").sign(new TextEncoder().encode(secret.wrongJwtKey));
    tokens.push({ value: service, issuedBy: "" }, { value: forged, issuedBy: "" });
    await record("service", auth().whoAmI({}, { bearer: service }));
    await record("service-forged", auth().whoAmI({}, { bearer: forged }));
    await record("bogus-key", auth().whoAmI({}, as(secret.bogusKey)));
    await record("bogus-bearer", auth().whoAmI({}, { bearer: secret.bogusKey }));

    const idToken = `${Buffer.from('{"alg":"RS256"}').toString("base64url")}.${Buffer.from(`{"secret":"${secret.bogusKey}"}`).toString("base64url")}.sig`;
    tokens.push({ value: idToken, issuedBy: "" });
    await record("oidc-db-tenant", auth().exchangeOidcToken({ tenant: t, idToken }, {}));
    const oidcTenant = `${p}_kc`;
    await record("tenant-kc", app.clients.tenants.createTenant({ name: oidcTenant, authProvider: "keycloak", authConfig: { issuer: "https://kc.example.com/realms/x", realm: "x", clientId: "qod" } }, staticKey));
    await app.pool.query(sql.typeAlias("void")`UPDATE tenants SET auth_config = ${sql.jsonb({ issuer: "https://127.0.0.1/realms/x", realm: "x", clientId: "qod" })} WHERE name = ${oidcTenant}`);
    await record("oidc-kc", auth().exchangeOidcToken({ tenant: oidcTenant, idToken }, {}));

    // Induced internal errors: an insert that a trigger swallows makes slonik's `one` fail
    // with an error that carries the bound values (a bcrypt hash, a token hash).
    await app.pool.query(sql.typeAlias("void")`CREATE FUNCTION swallow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$`);
    await app.pool.query(sql.typeAlias("void")`CREATE TRIGGER swallow BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION swallow()`);
    await app.pool.query(sql.typeAlias("void")`CREATE TRIGGER swallow BEFORE INSERT ON access_tokens FOR EACH ROW EXECUTE FUNCTION swallow()`);
    await record("user-internal", auth().createUser({ tenant: t, username: "cid", password: secret.userPassword }, staticKey));
    await record("pat-internal", auth().createAccessToken({ name: "lost" }, as(ann.token)));

    await record("logout", auth().logout({}, as(ann.token)));
    await record("whoami-after-logout", auth().whoAmI({}, as(ann.token)));
    await record("user-delete", auth().deleteUser({ tenant: t, username: "ann" }, staticKey));
  });
  after(async () => {
    await app.stop();
  });

  it("ran the flows, the induced failures included, and logged them", () => {
    assert.ok(responses.length > 30);
    const unexpected = logLines.filter((line) => line.includes('"unexpected error"'));
    assert.equal(unexpected.length, 2);
    for (const line of unexpected) assert.equal((JSON.parse(line) as { err: { values?: unknown } }).err.values, "[redacted]");
  });

  for (const [name, value] of Object.entries(secret)) {
    it(`shows the ${name} in no log line and no response`, () => {
      for (const line of logLines) assert.equal(line.includes(value), false, line);
      for (const r of responses) assert.equal(r.text.includes(value), false, `${r.label}: ${r.text}`);
    });
  }

  it("shows each token only in the response that issued it, and in no log line", () => {
    assert.ok(tokens.length >= 6);
    for (const token of tokens) {
      for (const line of logLines) assert.equal(line.includes(token.value), false, line);
      for (const r of responses.filter((r) => r.label !== token.issuedBy)) assert.equal(r.text.includes(token.value), false, `${r.label}: ${r.text}`);
    }
  });

  it("shows no password hash or token hash anywhere", () => {
    assert.ok(hashes.length >= 3);
    const bcrypt = /\$2[aby]\$\d\d\$/;
    for (const text of [...logLines, ...responses.map((r) => r.text)]) {
      assert.doesNotMatch(text, bcrypt);
      for (const hash of hashes) assert.equal(text.includes(hash), false, text);
    }
  });

  it("keeps secrets out of the audit log too", async () => {
    const rows = await app.pool.anyFirst(sql.type(z.object({ row: z.string() }))`SELECT row_to_json(a)::text AS row FROM audit_log a`);
    assert.ok(rows.length > 0);
    for (const row of rows) {
      for (const value of [...Object.values(secret), ...tokens.map((tk) => tk.value), ...hashes]) assert.equal(row.includes(value), false, row);
    }
  });
});
