// Holes 3 and 7 of issue 11, and the `__proto__` map key of hole 8: strings Postgres cannot hold
// (NUL) anywhere in a request or in a page token, a map key the decoder would silently drop, and
// a status too big for its trailers. Each is refused with INVALID_ARGUMENT (400) and a reason of
// the closed list, over gRPC and REST, changes nothing and logs no error.
import assert from "node:assert/strict";
import { status, type ServiceError } from "@grpc/grpc-js";
import { createLogger } from "../src/logger";
import { MAX_MESSAGE_BYTES, MAX_VIOLATIONS } from "../src/errors";
import { startTestApp, type TestApp } from "./helpers/app";
import { decodeError, expectError } from "./helpers/clients";
import { uniquePrefix } from "./helpers/postgres";
import { rawClient, requestBytes } from "./helpers/raw-grpc";
import { expectRestError, query, rest } from "./helpers/rest";
import { dumpState } from "./helpers/state-dump";

const pageToken = (token: unknown) => Buffer.from(JSON.stringify(token)).toString("base64url");

describe("hostile input (issue 11, holes 3 and 7, and __proto__ map keys)", () => {
  let app: TestApp;
  let raw: ReturnType<typeof rawClient>;
  const tenant = uniquePrefix("hi");
  const logLines: { level: number; msg: string }[] = [];
  let session: string;
  let before_: string;

  before(async () => {
    const logger = createLogger("info", { write: (line: string) => void logLines.push(JSON.parse(line) as { level: number; msg: string }) });
    app = await startTestApp({ logger });
    raw = rawClient(app.grpcAddress);
    await app.clients.tenants.createTenant({ name: tenant });
    session = (await app.clients.auth.login({ username: "admin", password: "admin" }, {})).token;
    before_ = await dumpState(app.pool);
  });
  after(async () => {
    raw.close();
    await app.stop();
  });
  afterEach(async () => {
    assert.equal(await dumpState(app.pool), before_, "a rejected request changed the state");
  });

  describe("NUL characters", () => {
    it("in Login's username, unauthenticated: INVALID_ARGUMENT invalid_character naming the field (gRPC)", async () => {
      const err = await expectError(app.clients.auth.login({ username: "admin\u0000", password: "x" }, {}), status.INVALID_ARGUMENT, "invalid_character");
      assert.deepEqual(err.violations.map((v) => v.field), ["username"]);
    });

    it("in Login's username, unauthenticated: 400 invalid_character (REST)", async () => {
      const res = await rest(app, "POST", "/api/auth/login", { auth: {}, body: { username: "admin\u0000", password: "x" } });
      expectRestError(res, 400, status.INVALID_ARGUMENT, "invalid_character");
    });

    it("in a tenant's displayName, and in setAuth's authConfig values and keys", async () => {
      await expectError(app.clients.tenants.createTenant({ name: `${tenant}d`, displayName: "a\u0000b" }), status.INVALID_ARGUMENT, "invalid_character");
      expectRestError(await rest(app, "POST", "/api/tenant/create", { body: { name: `${tenant}d`, displayName: "a\u0000b" } }), 400, status.INVALID_ARGUMENT, "invalid_character");
      const authConfig = { issuer: "https://kc.example.com/realms/x\u0000", realm: "x", clientId: "c" };
      const err = await expectError(app.clients.tenants.setTenantAuth({ name: tenant, authProvider: "keycloak", authConfig }), status.INVALID_ARGUMENT, "invalid_character");
      assert.deepEqual(err.violations.map((v) => v.field), ["auth_config.issuer"]);
      const res = await rest(app, "POST", "/api/tenant/setAuth", { body: { name: tenant, authProvider: "keycloak", authConfig: { "iss\u0000": "x" } } });
      expectRestError(res, 400, status.INVALID_ARGUMENT, "invalid_character");
      assert.equal(res.text.includes("\\u0000"), false, "the key is not echoed");
    });

    it("in an access token's name", async () => {
      await expectError(app.clients.auth.createAccessToken({ name: "n\u0000" }, { apiKey: session }), status.INVALID_ARGUMENT, "invalid_character");
      expectRestError(await rest(app, "POST", "/api/auth/pat/create", { auth: { apiKey: session }, body: { name: "n\u0000" } }), 400, status.INVALID_ARGUMENT, "invalid_character");
    });

    it("in a page token's decoded key (ListTenants, ListUsers, ListDatabases, ListPools)", async () => {
      const tokens = [
        { scope: "tenants", list: () => app.clients.tenants.listTenants({ pageToken: pageToken({ after: "a\u0000", scope: "tenants" }) }), path: `/api/tenant/list${query({ pageToken: pageToken({ after: "a\u0000", scope: "tenants" }) })}` },
        { scope: "users", list: () => app.clients.auth.listUsers({ pageToken: pageToken({ after: "\u0000", scope: "users:" }) }), path: `/api/user/list${query({ pageToken: pageToken({ after: "\u0000", scope: "users:" }) })}` },
        { scope: "databases", list: () => app.clients.databases.listDatabases({ tenant, pageToken: pageToken({ after: "\u0000", scope: `databases:${tenant}` }) }), path: `/api/database/list${query({ tenant, pageToken: pageToken({ after: "\u0000", scope: `databases:${tenant}` }) })}` },
        { scope: "pools", list: () => app.clients.pools.listPools({ tenant, pageToken: pageToken({ after: "\u0000", scope: `pools:${tenant}` }) }), path: `/api/pool/list${query({ tenant, pageToken: pageToken({ after: "\u0000", scope: `pools:${tenant}` }) })}` },
      ];
      for (const { list, path } of tokens) {
        await expectError(list(), status.INVALID_ARGUMENT, "invalid_page_token");
        expectRestError(await rest(app, "GET", path), 400, status.INVALID_ARGUMENT, "invalid_page_token");
      }
    });
  });

  describe("a map key __proto__", () => {
    it("in CreateDatabase's objectStore and CreateTenant's authConfig: INVALID_ARGUMENT invalid_map_key (gRPC, the raw bytes)", async () => {
      const cases = [
        ["qod.v1.DatabaseService/CreateDatabase", JSON.parse(`{"tenant":"${tenant}","name":"p1","kind":"memory","objectStore":{"__proto__":"x"}}`), "object_store"],
        ["qod.v1.TenantService/CreateTenant", JSON.parse(`{"name":"${tenant}p","authConfig":{"__proto__":"x"}}`), "auth_config"],
      ] as const;
      for (const [method, json, field] of cases) {
        const outcome = await raw.call(`/${method}`, requestBytes(method, json));
        const decoded = decodeError(outcome as unknown as ServiceError);
        assert.deepEqual([status[decoded.code], decoded.reason, decoded.violations.map((v) => v.field)], ["INVALID_ARGUMENT", "invalid_map_key", [field]]);
      }
    });

    it("in the same fields over REST: 400 invalid_map_key", async () => {
      const db = await rest(app, "POST", "/api/database/create", { raw: `{"tenant":"${tenant}","name":"p1","kind":"memory","objectStore":{"__proto__":"x"}}` });
      expectRestError(db, 400, status.INVALID_ARGUMENT, "invalid_map_key");
      const tn = await rest(app, "POST", "/api/tenant/create", { raw: `{"name":"${tenant}p","authConfig":{"__proto__":"x"}}` });
      expectRestError(tn, 400, status.INVALID_ARGUMENT, "invalid_map_key");
    });
  });

  describe("a status with many violations", () => {
    const authConfig = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`unknown_key_${i}_${"k".repeat(300)}`, "v"]));

    it("answers 1000 unknown authConfig keys within the deadline, with 20 violations and a count of the rest (gRPC)", async () => {
      const started = Date.now();
      const err = await expectError(
        app.clients.tenants.setTenantAuth({ name: tenant, authProvider: "keycloak", authConfig }, { apiKey: session, deadlineMs: 5_000 }),
        status.INVALID_ARGUMENT,
        "invalid_auth_config",
      );
      assert.ok(Date.now() - started < 5_000);
      assert.equal(err.violations.length, MAX_VIOLATIONS + 1);
      assert.match(err.violations.at(-1)!.description, /^\d+ more violations not shown$/);
      assert.ok(err.violations.every((v) => v.field.length <= 200), "long field paths are cut");
      assert.ok(Buffer.byteLength(err.message) <= MAX_MESSAGE_BYTES);
    });

    it("answers the same over REST", async () => {
      const res = await rest(app, "POST", "/api/tenant/setAuth", { body: { name: tenant, authProvider: "keycloak", authConfig } });
      expectRestError(res, 400, status.INVALID_ARGUMENT, "invalid_auth_config");
      const body = res.json as { message: string; details: { fieldViolations?: unknown[] }[] };
      assert.equal(body.details.find((d) => d.fieldViolations)?.fieldViolations?.length, MAX_VIOLATIONS + 1);
      assert.ok(res.text.length < 16 * 1024, `${res.text.length} bytes`);
    });
  });

  describe("afterwards", () => {
    it("logged nothing at error level", () => {
      assert.ok(logLines.length > 0, "the calls were logged");
      assert.deepEqual(logLines.filter((line) => line.level >= 50), []);
    });
  });
});
