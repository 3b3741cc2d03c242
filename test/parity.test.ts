// Parity: each row runs the same call over gRPC and over REST (each transport on fixtures of its
// own) and both must give the same result, or the same error: the same code, reason and message
// over gRPC, and over REST the HTTP status of the table below with that status in the body.
// Rows of services whose gRPC side still answers UNIMPLEMENTED are skipped.
import assert from "node:assert/strict";
import { status, type ServiceError } from "@grpc/grpc-js";
import * as authPb from "../gen/qod/v1/auth";
import * as databasePb from "../gen/qod/v1/database";
import * as poolPb from "../gen/qod/v1/pool";
import * as supavisorPb from "../gen/qod/v1/supavisor";
import * as tenantPb from "../gen/qod/v1/tenant";
import { buildRoutes, gatewayServices } from "../src/gateway/routes";
import { loadRegistry } from "../src/gateway/transcode";
import { readDescriptor } from "../src/server/reflection";
import { startTestApp, type TestApp } from "./helpers/app";
import { decodeError, type CallOptions, type Clients } from "./helpers/clients";
import { uniquePrefix } from "./helpers/postgres";
import { insertDatabaseRow } from "./helpers/fixtures";
import { expectRestError, query, rest } from "./helpers/rest";

// SPEC §4: gRPC code → HTTP status, copied literally (plus UNIMPLEMENTED for unfinished services).
const HTTP_STATUS: Partial<Record<status, number>> = {
  [status.INVALID_ARGUMENT]: 400,
  [status.UNAUTHENTICATED]: 401,
  [status.PERMISSION_DENIED]: 403,
  [status.NOT_FOUND]: 404,
  [status.ALREADY_EXISTS]: 409,
  [status.ABORTED]: 409,
  [status.RESOURCE_EXHAUSTED]: 429,
  [status.UNAVAILABLE]: 503,
  [status.UNIMPLEMENTED]: 501,
};

type ServiceKey = Exclude<keyof Clients, "close">;
const SERVICES: Record<ServiceKey, { name: string; messages: Record<string, unknown> }> = {
  tenants: { name: "TenantService", messages: tenantPb },
  databases: { name: "DatabaseService", messages: databasePb },
  auth: { name: "AuthService", messages: authPb },
  pools: { name: "PoolService", messages: poolPb },
  supavisor: { name: "SupavisorService", messages: supavisorPb },
};

/** One transport's run of a row: its own prefix for every name it makes. */
interface Run {
  app: TestApp;
  p: string;
}

interface Row {
  title: string;
  service: ServiceKey;
  rpc: string;
  /** The documented route, e.g. `GET /api/tenant/get`. */
  http: string;
  request(run: Run): Record<string, unknown>;
  setup?(run: Run): Promise<void>;
  auth?: CallOptions;
  /** The part of a successful result to compare (lists hold other rows' objects too). */
  select?(value: Record<string, unknown>, run: Run): unknown;
  expect: "ok" | [status, string];
}

type Outcome = { ok: true; value: unknown } | { ok: false; code: status; reason: string; message: string };

/** Makes two runs' results comparable: their prefixes, random ids and times are replaced. */
function normalize(value: unknown, p: string): unknown {
  if (value instanceof Date) return "<time>";
  if (typeof value === "string") return value.replaceAll(p, "<p>").replace(/\b(td|p|u|pat)-[0-9a-f]{32}\b/g, "<id>");
  if (Array.isArray(value)) return value.map((v) => normalize(v, p));
  if (value && typeof value === "object") {
    // A generated password differs run to run; that there is one is what compares.
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, k === "password" && v !== "" ? "<password>" : normalize(v, p)]));
  }
  return value;
}

const createTenant = (run: Run, name: string, extra: Record<string, unknown> = {}) => run.app.clients.tenants.createTenant({ name: `${run.p}_${name}`, ...extra });
async function tenantWithDatabase(run: Run, state: "READY" | "PROVISIONING" = "READY"): Promise<void> {
  await createTenant(run, "t");
  await insertDatabaseRow(run.app.pool, `${run.p}_t`, "sales", { kind: "ducklake", status: state });
}
const ownTenants = (value: Record<string, unknown>, run: Run) => (value.tenants as { name: string }[]).filter((t) => t.name.startsWith(run.p));
const keycloak = { issuer: "https://kc.example.com/realms/acme", realm: "acme" };

const rows: Row[] = [
  { title: "creates a tenant", service: "tenants", rpc: "createTenant", http: "POST /api/tenant/create", request: (r) => ({ name: `${r.p}_a` }), expect: "ok" },
  {
    title: "creates a tenant with an OIDC provider",
    service: "tenants",
    rpc: "createTenant",
    http: "POST /api/tenant/create",
    request: (r) => ({ name: `${r.p}_kc`, displayName: `${r.p} KC`, authProvider: "keycloak", authConfig: keycloak }),
    expect: "ok",
  },
  {
    title: "refuses a duplicate tenant",
    service: "tenants",
    rpc: "createTenant",
    http: "POST /api/tenant/create",
    setup: (r) => createTenant(r, "t").then(() => undefined),
    request: (r) => ({ name: `${r.p}_t` }),
    expect: [status.ALREADY_EXISTS, "exists"],
  },
  { title: "refuses a bad tenant name", service: "tenants", rpc: "createTenant", http: "POST /api/tenant/create", request: () => ({ name: "9lives" }), expect: [status.INVALID_ARGUMENT, "invalid_id"] },
  { title: "needs a credential", service: "tenants", rpc: "createTenant", http: "POST /api/tenant/create", auth: {}, request: (r) => ({ name: `${r.p}_x` }), expect: [status.UNAUTHENTICATED, "unauthenticated"] },
  { title: "refuses a wrong key", service: "tenants", rpc: "listTenants", http: "GET /api/tenant/list", auth: { apiKey: "wrong-key-wrong-key" }, request: () => ({}), expect: [status.UNAUTHENTICATED, "unauthenticated"] },
  {
    title: "lists tenants",
    service: "tenants",
    rpc: "listTenants",
    http: "GET /api/tenant/list",
    setup: (r) => Promise.all([createTenant(r, "l1"), createTenant(r, "l2")]).then(() => undefined),
    request: () => ({ pageSize: 1000 }),
    select: ownTenants,
    expect: "ok",
  },
  { title: "refuses a forged page token", service: "tenants", rpc: "listTenants", http: "GET /api/tenant/list", request: () => ({ pageToken: "forged" }), expect: [status.INVALID_ARGUMENT, "invalid_page_token"] },
  { title: "gets a tenant", service: "tenants", rpc: "getTenant", http: "GET /api/tenant/get", setup: (r) => createTenant(r, "t").then(() => undefined), request: (r) => ({ name: `${r.p}_t` }), expect: "ok" },
  { title: "answers not_found for a missing tenant", service: "tenants", rpc: "getTenant", http: "GET /api/tenant/get", request: (r) => ({ name: `${r.p}_none` }), expect: [status.NOT_FOUND, "not_found"] },
  {
    title: "disables a tenant",
    service: "tenants",
    rpc: "setTenantDisabled",
    http: "POST /api/tenant/setDisabled",
    setup: (r) => createTenant(r, "t").then(() => undefined),
    request: (r) => ({ name: `${r.p}_t`, disabled: true }),
    expect: "ok",
  },
  {
    title: "sets a tenant's auth provider",
    service: "tenants",
    rpc: "setTenantAuth",
    http: "POST /api/tenant/setAuth",
    setup: (r) => createTenant(r, "t").then(() => undefined),
    request: (r) => ({ name: `${r.p}_t`, authProvider: "keycloak", authConfig: keycloak }),
    expect: "ok",
  },
  {
    title: "refuses an incomplete auth config",
    service: "tenants",
    rpc: "setTenantAuth",
    http: "POST /api/tenant/setAuth",
    setup: (r) => createTenant(r, "t").then(() => undefined),
    request: (r) => ({ name: `${r.p}_t`, authProvider: "keycloak", authConfig: { realm: "acme" } }),
    expect: [status.INVALID_ARGUMENT, "invalid_auth_config"],
  },
  { title: "deletes a tenant", service: "tenants", rpc: "deleteTenant", http: "POST /api/tenant/delete", setup: (r) => createTenant(r, "t").then(() => undefined), request: (r) => ({ name: `${r.p}_t` }), expect: "ok" },
  {
    title: "refuses to delete a tenant with pools",
    service: "tenants",
    rpc: "deleteTenant",
    http: "POST /api/tenant/delete",
    setup: async (r) => {
      await tenantWithDatabase(r);
      await r.app.clients.pools.createPool({ tenant: `${r.p}_t`, tenantDb: "sales", pool: "bi" });
    },
    request: (r) => ({ name: `${r.p}_t` }),
    expect: [status.ABORTED, "has_pools"],
  },
  {
    title: "creates a pool",
    service: "pools",
    rpc: "createPool",
    http: "POST /api/pool/create",
    setup: (r) => tenantWithDatabase(r),
    request: (r) => ({ tenant: `${r.p}_t`, tenantDb: "sales", pool: "bi", size: 2 }),
    expect: "ok",
  },
  {
    title: "refuses a duplicate pool",
    service: "pools",
    rpc: "createPool",
    http: "POST /api/pool/create",
    setup: async (r) => {
      await tenantWithDatabase(r);
      await r.app.clients.pools.createPool({ tenant: `${r.p}_t`, tenantDb: "sales", pool: "bi" });
    },
    request: (r) => ({ tenant: `${r.p}_t`, tenantDb: `${r.p}_t_sales`, pool: "bi" }),
    expect: [status.ALREADY_EXISTS, "exists"],
  },
  {
    title: "refuses a pool on a missing database",
    service: "pools",
    rpc: "createPool",
    http: "POST /api/pool/create",
    setup: (r) => createTenant(r, "t").then(() => undefined),
    request: (r) => ({ tenant: `${r.p}_t`, tenantDb: "nope", pool: "bi" }),
    expect: [status.NOT_FOUND, "not_found"],
  },
  {
    title: "refuses a pool on a database that is not ready",
    service: "pools",
    rpc: "createPool",
    http: "POST /api/pool/create",
    setup: (r) => tenantWithDatabase(r, "PROVISIONING"),
    request: (r) => ({ tenant: `${r.p}_t`, tenantDb: "sales", pool: "bi" }),
    expect: [status.INVALID_ARGUMENT, "invalid_tenant_db"],
  },
  {
    title: "lists pools",
    service: "pools",
    rpc: "listPools",
    http: "GET /api/pool/list",
    setup: async (r) => {
      await tenantWithDatabase(r);
      for (const pool of ["bi", "etl"]) await r.app.clients.pools.createPool({ tenant: `${r.p}_t`, tenantDb: "sales", pool });
    },
    request: (r) => ({ tenant: `${r.p}_t` }),
    expect: "ok",
  },
  {
    title: "deletes a pool",
    service: "pools",
    rpc: "deletePool",
    http: "POST /api/pool/delete",
    setup: async (r) => {
      await tenantWithDatabase(r);
      await r.app.clients.pools.createPool({ tenant: `${r.p}_t`, tenantDb: "sales", pool: "bi" });
    },
    request: (r) => ({ tenant: `${r.p}_t`, pool: "bi" }),
    expect: "ok",
  },
  {
    title: "answers not_found for a missing pool",
    service: "pools",
    rpc: "deletePool",
    http: "POST /api/pool/delete",
    setup: (r) => createTenant(r, "t").then(() => undefined),
    request: (r) => ({ tenant: `${r.p}_t`, pool: "nope" }),
    expect: [status.NOT_FOUND, "not_found"],
  },
  { title: "lists databases", service: "databases", rpc: "listDatabases", http: "GET /api/database/list", setup: (r) => tenantWithDatabase(r), request: (r) => ({ tenant: `${r.p}_t` }), expect: "ok" },
  {
    title: "answers not_found for a missing database",
    service: "databases",
    rpc: "getDatabase",
    http: "GET /api/database/get",
    setup: (r) => createTenant(r, "t").then(() => undefined),
    request: (r) => ({ tenant: `${r.p}_t`, name: "nope" }),
    expect: [status.NOT_FOUND, "not_found"],
  },
  { title: "shows the metastore defaults", service: "databases", rpc: "getMetastoreDefaults", http: "GET /api/database/metastore-defaults", request: () => ({}), expect: "ok" },
  { title: "describes the caller", service: "auth", rpc: "whoAmI", http: "GET /api/auth/whoami", request: () => ({}), expect: "ok" },
  { title: "refuses a wrong password", service: "auth", rpc: "login", http: "POST /api/auth/login", auth: {}, request: () => ({ username: "admin", password: "wrong" }), expect: [status.UNAUTHENTICATED, "unauthenticated"] },
];

describe("gRPC and REST parity", () => {
  let app: TestApp;
  const registry = loadRegistry(readDescriptor());
  const { routes } = buildRoutes(registry, gatewayServices(registry));

  before(async () => {
    app = await startTestApp();
  });
  after(async () => {
    await app.stop();
  });

  for (const row of rows) {
    it(`${row.service}.${row.rpc} ${row.title}`, async function () {
      const { name, messages } = SERVICES[row.service];
      const rpcName = `${row.rpc[0].toUpperCase()}${row.rpc.slice(1)}`;
      const route = routes.find((r) => r.grpcPath === `/qod.v1.${name}/${rpcName}`);
      assert.ok(route, `no route for ${name}.${rpcName}`);
      assert.equal(`${route.httpMethod} ${route.template}`, row.http, "documented route");
      // The REST body's type: the response_body field's message, or the whole response.
      const bodyType = messages[route.responseBody.at(-1)?.message?.name ?? route.method.output.name] as { fromJSON(json: unknown): unknown };
      const responseField = route.responseBody.at(-1)?.jsonName;

      const overGrpc = async (run: Run): Promise<Outcome> => {
        const call = run.app.clients[row.service][row.rpc as never] as (request: unknown, auth?: CallOptions) => Promise<Record<string, unknown>>;
        try {
          const response = await call(row.request(run), row.auth);
          return { ok: true, value: responseField ? response[responseField] : response };
        } catch (err) {
          const { code, reason, message } = decodeError(err as ServiceError);
          return { ok: false, code, reason, message };
        }
      };
      const overRest = async (run: Run): Promise<Outcome> => {
        const request = row.request(run);
        const get = route.httpMethod === "GET";
        const path = get ? `${route.template}${query(request as Record<string, string>)}` : route.template;
        const res = await rest(run.app, route.httpMethod, path, { body: get ? undefined : request, auth: row.auth });
        if (res.status === 200) return { ok: true, value: bodyType.fromJSON(res.json) };
        const code = (res.json as { code: status }).code;
        const { reason, message } = expectRestError(res, HTTP_STATUS[code] ?? -1, code, (res.json as { details: { reason: string }[] }).details[0].reason);
        return { ok: false, code, reason, message };
      };

      const outcomes: Outcome[] = [];
      for (const transport of [overGrpc, overRest]) {
        const run = { app, p: uniquePrefix("par") };
        await row.setup?.(run);
        const outcome = await transport(run);
        if (outcome.ok && row.select) outcome.value = row.select(outcome.value as Record<string, unknown>, run);
        outcomes.push(JSON.parse(JSON.stringify(normalize(outcome, run.p))) as Outcome);
      }
      const [grpc, restful] = outcomes as [Outcome, Outcome];
      if (!grpc.ok && grpc.code === status.UNIMPLEMENTED) this.skip(); // the service is not written yet
      assert.deepEqual(grpc.ok ? "ok" : [grpc.code, grpc.reason], row.expect, `gRPC: ${JSON.stringify(grpc)}`);
      assert.deepEqual(restful, grpc);
    });
  }
});
