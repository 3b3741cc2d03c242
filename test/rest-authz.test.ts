// The auth issue's cross-tenant (BOLA) matrix and credential tests, over the JSON /api gateway:
// each row is sent to its RPC's documented method and path (the google.api.http rule of the
// descriptor), as a JSON body for POST and as query parameters for GET, and must answer 403 /
// 401 with the google.rpc.Status body. test/authz.test.ts and test/credentials.test.ts run
// the same rows over gRPC.
import assert from "node:assert/strict";
import { status, type ServiceError } from "@grpc/grpc-js";
import { sql } from "../src/db/sql";
import { buildRoutes, gatewayServices, type Route } from "../src/gateway/routes";
import { loadRegistry } from "../src/gateway/transcode";
import { readDescriptor } from "../src/server/reflection";
import { startTestApp, TEST_API_KEY, TEST_SESSION_SECRET, type TestApp } from "./helpers/app";
import { BOLA_CASES, BOLA_EXPECTED, BOLA_LISTS, bolaVictimState, createBolaFixture, TARGETS, type BolaFixture, type ServiceKey } from "./helpers/bola";
import { decodeError, type CallOptions } from "./helpers/clients";
import { uniquePrefix } from "./helpers/postgres";
import { expectRestError, query, rest, type RestError, type RestResponse } from "./helpers/rest";
import { badSessionCredentials, GARBAGE_CREDENTIALS, mintServiceToken, mintSessionToken, now, superuserId, type SessionTokenOptions } from "./helpers/tokens";

const registry = loadRegistry(readDescriptor());
const { routes } = buildRoutes(registry, gatewayServices(registry));

/** The route of `Service/Method` (e.g. `qod.v1.PoolService/CreatePool`): its http rule (not its additional bindings). */
function routeOf(rpc: string): Route {
  const found = routes.find((r) => r.grpcPath === `/${rpc}`);
  assert.ok(found, `no http rule for ${rpc}`);
  return found;
}

/** Calls an RPC over REST: the request as the JSON body of a POST, or as the query string of a GET. */
function callRest(app: TestApp, rpc: string, request: Record<string, unknown>, auth: CallOptions): Promise<RestResponse> {
  const route = routeOf(rpc);
  assert.equal(route.template.includes("{"), false, `${rpc}: path variables are not expected in ${route.template}`);
  if (route.httpMethod === "GET") {
    for (const [k, v] of Object.entries(request)) assert.ok(["string", "number", "boolean"].includes(typeof v), `${rpc}: ${k} cannot be a query parameter`);
    return rest(app, "GET", `${route.template}${query(request as Record<string, string | number | boolean>)}`, { auth });
  }
  assert.equal(route.httpMethod, "POST", `${rpc}: ${route.httpMethod}`);
  return rest(app, "POST", route.template, { body: request, auth });
}

/** Asserts the whole error body: `{code, message, details: [ErrorInfo]}`, nothing else in it. */
function expectStatusBody(res: RestResponse, httpStatus: number, code: status, reason: string): RestError {
  const error = expectRestError(res, httpStatus, code, reason);
  const body = res.json as { details: { "@type": string }[] };
  assert.deepEqual(Object.keys(body).sort(), ["code", "details", "message"], res.text);
  assert.deepEqual(body.details.map((d) => d["@type"]), ["type.googleapis.com/google.rpc.ErrorInfo"], res.text);
  // The only metadata is the request id: no hint of which object or rule was involved.
  assert.deepEqual(Object.keys(error.metadata ?? {}).filter((k) => k !== "requestId"), [], res.text);
  return error;
}

describe("REST authorization", () => {
  let app: TestApp;

  before(async () => {
    app = await startTestApp();
  });
  after(async () => {
    await app.stop();
  });

  describe("BOLA matrix over REST: a tenant admin of A on tenant B", () => {
    const p = uniquePrefix("zr");
    let f: BolaFixture;
    let victimBefore: unknown;
    const messages = new Set<string>();

    before(async () => {
      f = await createBolaFixture(app.clients, app.pool, p);
      victimBefore = await bolaVictimState(app.pool, f);
    });

    it("reaches every RPC of the matrix at a documented route", () => {
      for (const { rpc } of [...BOLA_CASES, ...BOLA_LISTS]) {
        const route = routeOf(rpc);
        assert.match(`${route.httpMethod} ${route.template}`, /^(GET|POST) \/api\/[a-z]+\/[a-zA-Z/-]+$/);
      }
    });

    for (const row of BOLA_CASES) {
      for (const target of TARGETS) {
        it(`${row.rpc} on B (${target}) answers ${BOLA_EXPECTED.httpStatus} ${BOLA_EXPECTED.reason}, as over gRPC`, async () => {
          const request = row.request(f, target);
          const res = await callRest(app, row.rpc, request, { apiKey: f.attacker });
          const error = expectStatusBody(res, BOLA_EXPECTED.httpStatus, BOLA_EXPECTED.grpcCode, BOLA_EXPECTED.reason);
          messages.add(error.message);
          // The same call over gRPC carries the same status.
          const clients = app.clients as unknown as Record<ServiceKey, Record<string, (r: unknown, o: CallOptions) => Promise<unknown>>>;
          const grpc = await clients[row.service][row.method](request, { apiKey: f.attacker }).then(
            () => assert.fail(`${row.rpc} succeeded over gRPC`),
            (err: ServiceError) => decodeError(err),
          );
          assert.deepEqual({ code: error.code, message: error.message, reason: error.reason }, { code: grpc.code, message: grpc.message, reason: grpc.reason });
        });
      }
    }

    it("answers every row with one message, whatever B holds", () => {
      assert.equal(messages.size, 1, [...messages].join(" | "));
    });

    for (const list of BOLA_LISTS) {
      it(`${list.rpc} shows nothing of B`, async () => {
        const res = await callRest(app, list.rpc, list.request(f), { apiKey: f.attacker });
        assert.equal(res.status, 200, res.text);
        assert.equal(res.text.includes(f.b), false, res.text);
      });
    }

    it("changed nothing of B", async () => {
      assert.deepEqual(await bolaVictimState(app.pool, f), victimBefore);
      const login = await rest(app, "POST", "/api/auth/login", { auth: {}, body: { tenant: f.b, username: f.bUser, password: f.bPassword } });
      assert.equal(login.status, 200, login.text);
    });

    it("still lets A's admin act on A", async () => {
      const got = await callRest(app, "qod.v1.TenantService/GetTenant", { name: f.a }, { apiKey: f.attacker });
      assert.equal(got.status, 200, got.text);
      assert.equal((got.json as { name: string }).name, f.a);
      const listed = await callRest(app, "qod.v1.TenantService/ListTenants", {}, { apiKey: f.attacker });
      assert.deepEqual((listed.json as { tenants: { name: string }[] }).tenants.map((t) => t.name), [f.a]);
      const users = await callRest(app, "qod.v1.AuthService/ListUsers", { tenant: f.a }, { apiKey: f.attacker });
      assert.deepEqual((users.json as { users: { username: string }[] }).users.map((u) => u.username), ["attacker"]);
    });
  });

  describe("credentials over REST", () => {
    /** The calls each credential is tried on. */
    const CALLS = [
      ["GET", "/api/tenant/list"],
      ["GET", "/api/auth/whoami"],
    ] as const;
    const messages = new Set<string>();
    let adminId: string;
    const sessionToken = (options: Partial<SessionTokenOptions> = {}) => mintSessionToken({ sub: adminId, ...options });
    const login = async () => {
      const res = await rest(app, "POST", "/api/auth/login", { auth: {}, body: { username: "admin", password: "admin" } });
      assert.equal(res.status, 200, res.text);
      return (res.json as { token: string }).token;
    };
    const createPat = async (session: string, name: string) => {
      const res = await rest(app, "POST", "/api/auth/pat/create", { auth: { apiKey: session }, body: { name } });
      assert.equal(res.status, 200, res.text);
      return res.json as { id: string; token: string };
    };

    /** Every call answers 401 `unauthenticated` for the credential, with the Status body. */
    async function refused(auth: CallOptions): Promise<void> {
      for (const [method, path] of CALLS) {
        const res = await rest(app, method, path, { auth });
        messages.add(expectStatusBody(res, 401, status.UNAUTHENTICATED, "unauthenticated").message);
      }
    }
    /** Every call answers 200 for the credential; returns WhoAmI's answer. */
    async function accepted(auth: CallOptions): Promise<Record<string, unknown>> {
      let who: Record<string, unknown> = {};
      for (const [method, path] of CALLS) {
        const res = await rest(app, method, path, { auth });
        assert.equal(res.status, 200, `${method} ${path}: ${res.text}`);
        if (path === "/api/auth/whoami") who = res.json as Record<string, unknown>;
      }
      return who;
    }

    before(async () => {
      adminId = await superuserId(app.pool);
    });

    describe("accepted", () => {
      it("a session token from /api/auth/login in X-API-Key", async () => {
        assert.equal((await accepted({ apiKey: await login() })).credential, "session");
      });

      it("a session token as a Bearer token", async () => {
        assert.equal((await accepted({ bearer: await login() })).credential, "session");
      });

      it("a well-formed token signed with the session secret", async () => {
        assert.equal((await accepted({ apiKey: await sessionToken() })).credential, "session");
      });

      it("a personal access token in X-API-Key", async () => {
        const pat = await createPat(await login(), "ok");
        assert.equal((await accepted({ apiKey: pat.token })).credential, "access_token");
      });

      it("a service JWT as a Bearer token", async () => {
        const who = await accepted({ bearer: await mintServiceToken() });
        assert.deepEqual(who, { username: "billing", role: "admin", tenant: "", superuser: true, manageableTenants: [], credential: "service_jwt" });
      });

      it("the static key", async () => {
        assert.equal((await accepted({ apiKey: TEST_API_KEY })).credential, "api_key");
      });
    });

    describe("refused with 401", () => {
      for (const [label, credentials] of badSessionCredentials(sessionToken)) {
        it(label, async () => {
          for (const auth of await credentials()) await refused(auth);
        });
      }

      it("a revoked personal access token", async () => {
        const session = await login();
        const pat = await createPat(session, "r");
        const revoked = await rest(app, "POST", "/api/auth/pat/revoke", { auth: { apiKey: session }, body: { id: pat.id } });
        assert.equal(revoked.status, 200, revoked.text);
        await refused({ apiKey: pat.token });
      });

      it("an expired personal access token", async () => {
        const pat = await createPat(await login(), "e");
        await app.pool.query(sql.typeAlias("void")`UPDATE access_tokens SET expires_at = now() - interval '1 second' WHERE id = ${pat.id}`);
        await refused({ apiKey: pat.token });
      });

      it("a personal access token never issued, malformed, or sent as a Bearer token", async () => {
        await refused({ apiKey: `qod_pat_${"A".repeat(43)}` });
        await refused({ apiKey: "qod_pat_short" });
        await refused({ bearer: (await createPat(await login(), "b")).token });
      });

      it("a bad service JWT: without exp, expired, another key, another algorithm, or in X-API-Key", async () => {
        await refused({ bearer: await mintServiceToken({}, { exp: null }) });
        await refused({ bearer: await mintServiceToken({}, { exp: now() - 10 }) });
        await refused({ bearer: await mintServiceToken({}, { secret: TEST_SESSION_SECRET }) });
        await refused({ bearer: await mintServiceToken({}, { alg: "HS384" }) });
        await refused({ apiKey: await mintServiceToken() });
      });

      it("no credential, a wrong static key, garbage and other schemes", async () => {
        for (const credential of GARBAGE_CREDENTIALS) await refused(credential);
      });

      it("a wrong X-API-Key next to a valid Bearer token (X-API-Key decides)", async () => {
        await refused({ apiKey: "wrong", bearer: await login() });
      });

      // Last but the message check: it restarts the service.
      it("a session logged out over REST, also after a restart, while other sessions survive it", async () => {
        const revoked = await login();
        const kept = await login();
        const logout = await rest(app, "POST", "/api/auth/logout", { auth: { apiKey: revoked }, body: {} });
        assert.equal(logout.status, 200, logout.text);
        await refused({ apiKey: revoked });
        app = await app.restart();
        await refused({ apiKey: revoked });
        await refused({ bearer: revoked });
        assert.equal((await accepted({ apiKey: kept })).username, "admin");
      });

      it("says nothing of why: one message for every refusal above", () => {
        assert.ok(messages.size > 0);
        assert.equal(messages.size, 1, [...messages].join(" | "));
      });
    });
  });
});
