// What an operator watches (issue 14): /metrics on its own port, moved by exactly the calls made
// over both surfaces; the probes on both listeners; one log line per call; the data plane's
// per-pool figures. The readiness flip when the state database stops is in pg-restart.test.ts.
import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { Writable } from "node:stream";
import { createLogger } from "../src/logger";
import { TEST_API_KEY, startTestApp, type TestApp } from "./helpers/app";
import { expectError } from "./helpers/clients";
import { DASHBOARD_METRICS, family } from "./helpers/dashboard-metrics";
import { dropDatabasesWithPrefix } from "./helpers/databases";
import { freePort } from "../src/db/embedded";
import { pgClient, requireTools } from "./helpers/edge";
import { sharedPostgres, uniquePrefix } from "./helpers/postgres";
import { rest } from "./helpers/rest";
import { rawClient } from "./helpers/raw-grpc";
import { waitFor } from "./helpers/wait";

/** Prometheus's text format as `name{label="v",…}` → value (labels in the order printed). */
type Samples = Map<string, number>;

function parse(text: string): Samples {
  const samples: Samples = new Map();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

/** The samples of `name` that changed from `before` to `after`, by their series. */
function deltas(before: Samples, after: Samples, name: string): Record<string, number> {
  const moved: Record<string, number> = {};
  for (const [series, value] of after) {
    if (!series.startsWith(`${name}{`) && series !== name) continue;
    const delta = value - (before.get(series) ?? 0);
    if (delta !== 0) moved[series] = delta;
  }
  return moved;
}

const call = (surface: string, service: string, method: string, code?: string) =>
  `{grpc_type="unary",grpc_service="qod.v1.${service}",grpc_method="${method}",surface="${surface}"${code ? `,grpc_code="${code}"` : ""}}`;

describe("observability: /metrics, probes and logs", function () {
  this.timeout(120_000);
  const p = uniquePrefix("obs");
  let app: TestApp;
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger(
    "info",
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split("\n")) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    }),
  );
  const scrape = async (): Promise<Samples> => {
    const res = await fetch(`http://127.0.0.1:${app.metricsPort}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    return parse(await res.text());
  };

  before(async () => {
    requireTools();
    app = await startTestApp({ edge: true, logger, env: { QOD_METRICS_PORT: String(await freePort()) } });
  });
  after(async () => {
    await app?.stop();
    await dropDatabasesWithPrefix(sharedPostgres(), p);
  });

  it("counts exactly the calls made, by method, surface and code, with their handling time", async () => {
    const before = await scrape();
    const tenant = `${p}_a`;
    // gRPC: one create, two reads, one read of nothing, one call without a credential.
    await app.clients.tenants.createTenant({ name: tenant });
    await app.clients.tenants.getTenant({ name: tenant });
    await app.clients.tenants.getTenant({ name: tenant });
    await expectError(app.clients.tenants.getTenant({ name: `${p}_none` }), status.NOT_FOUND, "not_found");
    await expectError(app.clients.tenants.listTenants({}, { deadlineMs: 5_000 }), status.UNAUTHENTICATED, "unauthenticated");
    // REST: one read, one bad name; a body that does not decode and an unknown path are no calls.
    const auth = { apiKey: TEST_API_KEY };
    assert.equal((await rest(app, "GET", `/api/tenant/get?name=${tenant}`, { auth })).status, 200);
    assert.equal((await rest(app, "POST", "/api/tenant/create", { auth, body: { name: "Bad Name!" } })).status, 400);
    assert.equal((await rest(app, "POST", "/api/tenant/create", { auth, raw: "{not json" })).status, 400);
    assert.equal((await rest(app, "GET", "/api/no/such/route", { auth })).status, 404);
    const after = await scrape();

    assert.deepEqual(deltas(before, after, "grpc_server_started_total"), {
      [`grpc_server_started_total${call("grpc", "TenantService", "CreateTenant")}`]: 1,
      [`grpc_server_started_total${call("grpc", "TenantService", "GetTenant")}`]: 3,
      [`grpc_server_started_total${call("grpc", "TenantService", "ListTenants")}`]: 1,
      [`grpc_server_started_total${call("rest", "TenantService", "GetTenant")}`]: 1,
      [`grpc_server_started_total${call("rest", "TenantService", "CreateTenant")}`]: 1,
    });
    assert.deepEqual(deltas(before, after, "grpc_server_handled_total"), {
      [`grpc_server_handled_total${call("grpc", "TenantService", "CreateTenant", "OK")}`]: 1,
      [`grpc_server_handled_total${call("grpc", "TenantService", "GetTenant", "OK")}`]: 2,
      [`grpc_server_handled_total${call("grpc", "TenantService", "GetTenant", "NOT_FOUND")}`]: 1,
      [`grpc_server_handled_total${call("grpc", "TenantService", "ListTenants", "UNAUTHENTICATED")}`]: 1,
      [`grpc_server_handled_total${call("rest", "TenantService", "GetTenant", "OK")}`]: 1,
      [`grpc_server_handled_total${call("rest", "TenantService", "CreateTenant", "INVALID_ARGUMENT")}`]: 1,
    });
    const counts = deltas(before, after, "grpc_server_handling_seconds_count");
    assert.equal(counts[`grpc_server_handling_seconds_count${call("grpc", "TenantService", "GetTenant")}`], 3);
    const inf = `grpc_server_handling_seconds_bucket{le="+Inf",grpc_type="unary",grpc_service="qod.v1.TenantService",grpc_method="GetTenant",surface="grpc"}`;
    assert.equal((after.get(inf) ?? 0) - (before.get(inf) ?? 0), 3);
    // GetTenant reads the tenant cache: its first read of the new tenant is a miss, the next a hit.
    const lookups = deltas(before, after, "qod_tenant_cache_lookups_total");
    assert.ok((lookups['qod_tenant_cache_lookups_total{result="hit"}'] ?? 0) >= 1, JSON.stringify(lookups));
    assert.ok((lookups['qod_tenant_cache_lookups_total{result="miss"}'] ?? 0) >= 1, JSON.stringify(lookups));
    // No label value came from the unknown path or the bad name.
    const text = [...after.keys()].join("\n");
    assert.doesNotMatch(text, /no\/such|Bad Name|not json/);
  });

  it("times provisioning and drops, by outcome", async () => {
    const before = await scrape();
    const tenant = `${p}_db`;
    await app.clients.tenants.createTenant({ name: tenant });
    await app.clients.databases.createDatabase({ tenant, name: "sales" });
    await app.clients.databases.deleteDatabase({ tenant, name: "sales", dropDatabase: true });
    const after = await scrape();
    assert.deepEqual(deltas(before, after, "qod_provisioning_seconds_count"), {
      'qod_provisioning_seconds_count{operation="create",outcome="ok"}': 1,
      'qod_provisioning_seconds_count{operation="delete",outcome="ok"}': 1,
    });
    const lifecycle = lines.filter((l) => l.component === "lifecycle" && l.database === `${tenant}_sales`).map((l) => l.msg);
    assert.deepEqual(lifecycle, ["provisioned a database", "dropped a database"]);
  });

  it("counts a login refused by the throttle", async () => {
    const before = await scrape();
    for (let i = 0; i < 5; i++) await expectError(app.clients.auth.login({ username: `${p}_ghost`, password: "wrong-password" }), status.UNAUTHENTICATED, "unauthenticated");
    await expectError(app.clients.auth.login({ username: `${p}_ghost`, password: "wrong-password" }), status.RESOURCE_EXHAUSTED, "rate_limited");
    const after = await scrape();
    assert.deepEqual(deltas(before, after, "qod_login_throttled_total"), { 'qod_login_throttled_total{scope="failures"}': 1 });
    assert.deepEqual(deltas(before, after, "grpc_server_handled_total"), {
      [`grpc_server_handled_total${call("grpc", "AuthService", "Login", "UNAUTHENTICATED")}`]: 5,
      [`grpc_server_handled_total${call("grpc", "AuthService", "Login", "RESOURCE_EXHAUSTED")}`]: 1,
    });
  });

  it("shows each pool's clients, servers and transactions, labelled by tenant and pool, and the edge's engines", async () => {
    const tenant = `${p}_dp`;
    await app.clients.tenants.createTenant({ name: tenant });
    await app.clients.databases.createDatabase({ tenant, name: "sales" });
    const pool = await app.clients.pools.createPool({ tenant, tenantDb: "sales", pool: "bi", size: 2 });
    const port = app.edge!.transactionPort;
    const client = await waitFor("the pool to be served", () => pgClient(port, pool.user, pool.password!, pool.database).catch(() => undefined));
    for (let i = 0; i < 3; i++) await client.query("select 1");
    try {
      const labels = `tenant="${tenant}",pool="bi"`;
      const samples = await scrape();
      assert.equal(samples.get(`qod_pool_clients{${labels}}`), 1);
      assert.ok((samples.get(`qod_pool_transactions_total{${labels}}`) ?? 0) >= 3);
      assert.ok((samples.get(`qod_pool_queries_total{${labels}}`) ?? 0) >= 3);
      assert.ok(samples.has(`qod_pool_servers{${labels},state="active"}`) && samples.has(`qod_pool_servers{${labels},state="idle"}`));
      assert.ok(samples.has(`qod_pool_wait_seconds_total{${labels}}`));
      assert.ok((samples.get('qod_edge_engines{state="running"}') ?? 0) >= 1);
      assert.equal(samples.get('qod_edge_engines{state="down"}'), 0);
      assert.ok((samples.get("qod_edge_connections") ?? 0) >= 1);
      assert.equal(samples.get("qod_ready"), 1);
      assert.ok((samples.get('qod_state_pool_connections{pool="calls",state="idle"}') ?? -1) >= 0);
      assert.ok(samples.has('qod_state_pool_waiting{pool="calls"}'));
      assert.ok((samples.get("process_resident_memory_bytes") ?? 0) > 0);
      assert.ok(samples.has("nodejs_eventloop_lag_p99_seconds"));
    } finally {
      await client.end();
    }
    await app.clients.pools.deletePool({ tenant, pool: "bi" });
    await waitFor("the deleted pool's series to go", async () => !(await scrape()).has(`qod_pool_clients{tenant="${tenant}",pool="bi"}`));
  });

  it("exports every metric the Grafana dashboard queries (deploy/grafana/qod-dashboard.json)", async () => {
    const text = await (await fetch(`http://127.0.0.1:${app.metricsPort}/metrics`)).text();
    const exported = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
    assert.deepEqual(DASHBOARD_METRICS.filter((name) => !exported.has(family(name)) && !exported.has(name)), []);
  });

  it("answers the probes on the JSON listener and on the metrics listener, GET and HEAD", async () => {
    for (const base of [app.httpBase, `http://127.0.0.1:${app.metricsPort}`]) {
      const livez = await fetch(`${base}/livez`);
      assert.deepEqual([livez.status, await livez.json()], [200, { status: "ok" }]);
      const readyz = await fetch(`${base}/readyz`);
      assert.deepEqual([readyz.status, await readyz.json()], [200, { status: "ready", checks: { state_database: "ok", migrations: "ok", data_plane: "ok", accepting_calls: "ok" } }]);
      const health = await fetch(`${base}/health`);
      const body = (await health.json()) as { status: string; poolsCount: number; nodesCount: number };
      assert.equal(health.status, 200);
      assert.deepEqual(Object.keys(body), ["status", "poolsCount", "nodesCount"]);
      assert.equal(body.status, "ok");
      assert.equal(body.nodesCount, 1);
      assert.ok(Number.isInteger(body.poolsCount) && body.poolsCount >= 0);
      const ready = await fetch(`${base}/ready`);
      assert.equal(ready.status, 200);
      assert.equal(((await ready.json()) as { status: string }).status, "ok");
      const head = await fetch(`${base}/readyz`, { method: "HEAD" });
      assert.deepEqual([head.status, await head.text()], [200, ""]);
    }
    const other = await fetch(`http://127.0.0.1:${app.metricsPort}/api/tenant/list`);
    assert.equal(other.status, 404);
    assert.equal(((await other.json()) as { code: number }).code, status.NOT_FOUND);
    // gRPC health says the same.
    const health = rawClient(app.grpcAddress);
    try {
      const answer = await health.call("/grpc.health.v1.Health/Check", new Uint8Array(), {}, { deadlineMs: 2_000 });
      assert.equal(answer.code, status.OK);
      assert.deepEqual([...(answer.response ?? [])], [8, 1]); // status: SERVING
    } finally {
      health.close();
    }
  });

  it("logs one info line per call, with its surface, code, reason, principal and tenant, each key once", async () => {
    lines.length = 0;
    const tenant = `${p}_a`;
    await app.clients.tenants.getTenant({ name: tenant }, { apiKey: TEST_API_KEY, headers: { "x-request-id": "obs-grpc-1" } });
    const res = await rest(app, "GET", `/api/tenant/get?name=${p}_none`, { auth: { apiKey: TEST_API_KEY }, headers: { "x-request-id": "obs-rest-1" } });
    assert.equal(res.status, 404);
    // A name that is no tenant name is not logged as one (the line runs before validation).
    const hostile = `${"x".repeat(300)}</script>`;
    await expectError(app.clients.tenants.getTenant({ name: hostile }, { apiKey: TEST_API_KEY, headers: { "x-request-id": "obs-bad-1" } }), status.INVALID_ARGUMENT, "invalid_id");
    const bad = lines.find((l) => l.requestId === "obs-bad-1");
    assert.ok(bad && bad.tenant === undefined && !JSON.stringify(bad).includes("script"), JSON.stringify(bad));
    lines.splice(lines.indexOf(bad), 1);
    const calls = lines.filter((l) => l.msg === "call" || l.msg === "call failed");
    assert.deepEqual(
      calls.map(({ level, requestId, method, surface, code, reason, principal, tenant: t }) => ({ level, requestId, method, surface, code, reason, principal, tenant: t })),
      [
        { level: 30, requestId: "obs-grpc-1", method: "/qod.v1.TenantService/GetTenant", surface: "grpc", code: "OK", reason: undefined, principal: "api_key", tenant },
        { level: 30, requestId: "obs-rest-1", method: "/qod.v1.TenantService/GetTenant", surface: "rest", code: "NOT_FOUND", reason: "not_found", principal: "api_key", tenant: `${p}_none` },
      ],
    );
    for (const line of calls) {
      assert.equal(typeof line.ms, "number");
      assert.match(String(line.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, "ISO-8601 time");
    }
  });

  it("gives a request refused before it is a call a request id: in the header, the error's metadata and the log", async () => {
    lines.length = 0;
    const refused = await rest(app, "POST", "/api/tenant/create", { auth: { apiKey: TEST_API_KEY }, raw: "{not json" });
    assert.equal(refused.status, 400);
    const requestId = refused.headers.get("x-request-id");
    assert.match(requestId ?? "", /^[0-9a-f-]{36}$/);
    const body = refused.json as { details: { metadata: Record<string, string> }[] };
    assert.deepEqual(body.details[0].metadata, { requestId });
    const logged = lines.find((l) => l.msg === "request refused");
    assert.deepEqual(logged && { requestId: logged.requestId, status: logged.status, reason: logged.reason, path: logged.path }, { requestId, status: 400, reason: "invalid_argument", path: "/api/tenant/create" });
    // A client's own valid id is kept.
    const own = await rest(app, "GET", "/api/no/such/route", { headers: { "x-request-id": "obs-404" } });
    assert.equal(own.headers.get("x-request-id"), "obs-404");
  });
});
