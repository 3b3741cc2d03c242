// The JSON /api gateway over real HTTP on loopback: routes, Envoy's transcoder behaviour, and
// what crosses from HTTP into the in-process call (headers, peer, deadline, cancellation), the
// latter against stub handlers that record the context they receive.
import assert from "node:assert/strict";
import { Agent, request as httpRequest } from "node:http";
import { status } from "@grpc/grpc-js";
import { Tenant, TenantServiceService, type GetTenantRequest } from "../gen/qod/v1/tenant";
import { AppError } from "../src/errors";
import { buildRoutes, gatewayServices } from "../src/gateway/routes";
import { createGateway, GATEWAY_DEADLINE_MS, type Gateway } from "../src/gateway/server";
import { loadRegistry } from "../src/gateway/transcode";
import type { CallContext } from "../src/call/context";
import { bindService } from "../src/server/bind";
import type { Invoker } from "../src/server/invoker";
import { readDescriptor } from "../src/server/reflection";
import { requestScreens } from "../src/server/request-screen";
import { startTestApp, TEST_API_KEY, type TestApp } from "./helpers/app";
import { quietLogger, uniquePrefix } from "./helpers/postgres";
import { insertDatabaseRow } from "./helpers/fixtures";
import { expectRestError, query, rest, type RestResponse } from "./helpers/rest";
import { waitFor } from "./helpers/wait";

const registry = loadRegistry(readDescriptor());
const { routes } = buildRoutes(registry, gatewayServices(registry));

describe("JSON /api gateway", () => {
  let app: TestApp;
  const p = uniquePrefix("g");
  const MAX_BODY = 4096;

  before(async () => {
    app = await startTestApp({ env: { QOD_MAX_BODY_BYTES: String(MAX_BODY) } });
  });
  after(async () => {
    await app.stop();
  });

  describe("route table", () => {
    // SPEC §3, copied literally.
    const documented = [
      "POST /api/tenant/create",
      "GET /api/tenant/list",
      "GET /api/tenant/get",
      "POST /api/tenant/setDisabled",
      "POST /api/tenant/setAuth",
      "POST /api/tenant/delete",
      "POST /api/database/create",
      "GET /api/database/list",
      "GET /api/database/get",
      "POST /api/database/update",
      "POST /api/database/delete",
      "GET /api/database/metastore-defaults",
      "POST /api/auth/login",
      "POST /api/auth/logout",
      "GET /api/auth/whoami",
      "POST /api/user/create",
      "GET /api/user/list",
      "POST /api/user/delete",
      "POST /api/auth/change-password",
      "POST /api/auth/pat/create",
      "POST /api/auth/pat/list",
      "POST /api/auth/pat/revoke",
      "POST /api/pool/create",
      "GET /api/pool/list",
      "POST /api/pool/delete",
      "POST /api/pool/stop",
      "POST /api/pool/setDisabled",
      "POST /api/pool/scale",
      // SPEC §11, Supavisor's tenant API.
      "PUT /api/tenants/{external_id}",
      "GET /api/tenants/{external_id}",
      "PATCH /api/tenants/{external_id}",
      "DELETE /api/tenants/{external_id}",
      "GET /api/tenants/{external_id}/terminate",
      "POST /api/tenants/{external_id}/update_auth_credentials",
      "GET /api/health",
    ];
    // In the contract but not in SPEC §3's table.
    const undocumented = ["POST /api/auth/oidc/exchange"];

    it("has exactly SPEC §3's and §11's routes (plus the OIDC exchange), one per RPC of the qod.v1 services", () => {
      assert.deepEqual(routes.map((r) => `${r.httpMethod} ${r.template}`).sort(), [...documented, ...undocumented].sort());
      const rpcs = gatewayServices(registry).flatMap((s) => s.methods.map((m) => `/${s.typeName}/${m.name}`));
      assert.deepEqual([...new Set(routes.map((r) => r.grpcPath))].sort(), rpcs.sort());
    });

    for (const route of routes) {
      it(`reaches ${route.grpcPath} at ${route.httpMethod} ${route.template}, and only with that method`, async () => {
        const res = await rest(app, route.httpMethod, route.template, route.httpMethod === "GET" ? {} : { raw: "{}" });
        // The gateway's own 404 ("Could not resolve …") would mean the route missed its method.
        assert.ok(!(res.status === 404 && res.text.includes("Could not resolve")), `no answer from the handler chain: ${res.status} ${res.text}`);
        const taken = new Set(routes.filter((r) => r.template === route.template).map((r) => r.httpMethod));
        const unused = ["GET", "POST", "PUT", "PATCH", "DELETE"].find((method) => !taken.has(method))!;
        const other = await rest(app, unused, route.template);
        expectRestError(other, 404, status.NOT_FOUND, "not_found");
      });
    }

    it("does not expose health or reflection", async () => {
      for (const path of ["/grpc.health.v1.Health/Check", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"]) {
        expectRestError(await rest(app, "POST", path, { raw: "{}" }), 404, status.NOT_FOUND, "not_found");
      }
    });
  });

  describe("Envoy's transcoder behaviour", () => {
    it("answers the object itself for response_body, {list} for lists and {} for deletes, all primitive fields printed", async () => {
      const created = await rest(app, "POST", "/api/tenant/create", { body: { name: `${p}_shape` } });
      assert.equal(created.status, 200, created.text);
      assert.match(created.headers.get("content-type") ?? "", /^application\/json/);
      const tenant = created.json as Record<string, unknown>;
      assert.deepEqual(
        { ...tenant, createTime: typeof tenant.createTime, updateTime: typeof tenant.updateTime },
        { name: `${p}_shape`, id: `${p}_shape`, displayName: `${p}_shape`, pools: [], disabled: false, authProvider: "db", authConfig: {}, createTime: "string", updateTime: "string", banned: false, banReason: "" },
      );
      assert.match(tenant.createTime as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
      const listed = await rest(app, "GET", "/api/tenant/list");
      assert.equal(listed.status, 200);
      assert.deepEqual(Object.keys(listed.json as object), ["tenants", "nextPageToken"]);
      const deleted = await rest(app, "POST", "/api/tenant/delete", { body: { name: `${p}_shape` } });
      assert.equal(deleted.status, 200);
      assert.equal(deleted.text, "{}");
    });

    it("answers a gRPC error with Envoy's status and the google.rpc.Status body (409 has_pools)", async () => {
      const tenant = `${p}_busy`;
      await rest(app, "POST", "/api/tenant/create", { body: { name: tenant } });
      const database = await insertDatabaseRow(app.pool, tenant, "sales", { kind: "ducklake" });
      const pool = await rest(app, "POST", "/api/pool/create", { body: { tenant, tenantDb: "sales", pool: "bi", size: 2 } });
      assert.equal(pool.status, 200, pool.text);
      assert.equal((pool.json as { tenantDb: string }).tenantDb, database);
      const res = await rest(app, "POST", "/api/tenant/delete", { body: { name: tenant }, headers: { "x-request-id": `${p}-req-1` } });
      const err = expectRestError(res, 409, status.ABORTED, "has_pools");
      assert.deepEqual(err.metadata, { requestId: `${p}-req-1` });
      assert.equal(res.headers.get("x-request-id"), `${p}-req-1`);
      // convert_grpc_status leaves no gRPC status headers behind.
      assert.equal(res.headers.get("grpc-status"), null);
      assert.deepEqual(Object.keys(res.json as object), ["code", "message", "details"]);
    });

    const statuses: [string, () => Promise<RestResponse>, number, status, string][] = [
      ["UNAUTHENTICATED without a credential", () => rest(app, "GET", "/api/tenant/list", { auth: {} }), 401, status.UNAUTHENTICATED, "unauthenticated"],
      ["NOT_FOUND for a missing tenant", () => rest(app, "GET", `/api/tenant/get?name=${p}_missing`), 404, status.NOT_FOUND, "not_found"],
      ["INVALID_ARGUMENT for a bad name", () => rest(app, "POST", "/api/tenant/create", { body: { name: "1bad" } }), 400, status.INVALID_ARGUMENT, "invalid_id"],
      ["ALREADY_EXISTS for a duplicate", async () => {
        await rest(app, "POST", "/api/tenant/create", { body: { name: `${p}_dup` } });
        return rest(app, "POST", "/api/tenant/create", { body: { name: `${p}_dup` } });
      }, 409, status.ALREADY_EXISTS, "exists"],
    ];
    for (const [label, call, httpStatus, code, reason] of statuses) {
      it(`answers ${httpStatus} for ${label}`, async () => {
        expectRestError(await call(), httpStatus, code, reason);
      });
    }

    it("answers 404 for an unknown route and for a known path with another method (reject_unknown_method)", async () => {
      const unknown = expectRestError(await rest(app, "GET", "/api/nope?x=1"), 404, status.NOT_FOUND, "not_found");
      assert.equal(unknown.message, "Could not resolve /api/nope to a method.");
      expectRestError(await rest(app, "GET", "/api/tenant/create"), 404, status.NOT_FOUND, "not_found");
      expectRestError(await rest(app, "DELETE", "/api/tenant/get"), 404, status.NOT_FOUND, "not_found");
    });

    it("answers 400 for an unknown query parameter (reject_unknown_query_parameters)", async () => {
      const err = expectRestError(await rest(app, "GET", "/api/tenant/list?bogus=1"), 400, status.INVALID_ARGUMENT, "invalid_argument");
      assert.equal(err.message, 'Could not find field "bogus" in the type "qod.v1.ListTenantsRequest".');
    });

    const badBodies: [string, string][] = [
      ["undecodable JSON", '{"name": '],
      ["a wrong field type", '{"name": 5}'],
      ["an unknown field", '{"nmae": "x"}'],
    ];
    for (const [label, raw] of badBodies) {
      it(`answers 400 for ${label}, before any call`, async () => {
        const res = await rest(app, "POST", "/api/tenant/create", { raw });
        const err = expectRestError(res, 400, status.INVALID_ARGUMENT, "invalid_argument");
        // Refused by the transcoder, yet with a request id to quote, as a call's error has.
        assert.ok(res.headers.get("x-request-id"));
        assert.deepEqual(err.metadata, { requestId: res.headers.get("x-request-id") });
      });
    }

    it("binds query parameters to fields: int32 page_size by either name, and an opaque page token", async () => {
      for (const i of [1, 2, 3]) await rest(app, "POST", "/api/tenant/create", { body: { name: `${p}_q${i}` } });
      const first = await rest(app, "GET", `/api/tenant/list${query({ pageSize: 2 })}`);
      const page = first.json as { tenants: { name: string }[]; nextPageToken: string };
      assert.equal(page.tenants.length, 2);
      assert.ok(page.nextPageToken);
      const next = await rest(app, "GET", `/api/tenant/list${query({ page_size: 2, pageToken: page.nextPageToken })}`);
      const names = (next.json as typeof page).tenants.map((t) => t.name);
      assert.ok(names.every((n) => n > page.tenants[1].name));
      const got = await rest(app, "GET", `/api/tenant/get${query({ name: `${p}_q2` })}`);
      assert.equal((got.json as { name: string }).name, `${p}_q2`);
      expectRestError(await rest(app, "GET", "/api/tenant/list?pageSize=two"), 400, status.INVALID_ARGUMENT, "invalid_argument");
    });

    it("serves a GET with no body and no query, and ignores the request content-type", async () => {
      assert.equal((await rest(app, "GET", "/api/tenant/list")).status, 200);
      const res = await rest(app, "POST", "/api/tenant/create", { body: { name: `${p}_text` }, headers: { "content-type": "text/plain" } });
      assert.equal(res.status, 200, res.text);
    });

    it("answers 413 over the body limit, with or without a content-length, and accepts a body at the limit", async () => {
      const padded = (size: number) => {
        const body = JSON.stringify({ name: `${p}_big`, displayName: "" });
        return body.replace('""', JSON.stringify("x".repeat(size - body.length)));
      };
      const over = await rest(app, "POST", "/api/tenant/create", { raw: padded(MAX_BODY + 1) });
      expectRestError(over, 413, status.INVALID_ARGUMENT, "invalid_body_size");
      assert.equal(over.headers.get("connection"), "close");
      const stream = new ReadableStream({
        start(controller) {
          for (let i = 0; i < 8; i++) controller.enqueue(new TextEncoder().encode(" ".repeat(1024)));
          controller.close();
        },
      });
      const chunked = await fetch(`${app.httpBase}/api/tenant/create`, { method: "POST", body: stream, headers: { "x-api-key": TEST_API_KEY }, duplex: "half" } as RequestInit);
      assert.equal(chunked.status, 413);
      await chunked.arrayBuffer();
      const atLimit = await rest(app, "POST", "/api/tenant/create", { raw: padded(MAX_BODY) });
      expectRestError(atLimit, 400, status.INVALID_ARGUMENT, "invalid_display_name");
    });

    it("keeps the connection alive across requests", async () => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      const get = () =>
        new Promise<{ reused: boolean; port: number | undefined }>((resolve, reject) => {
          const req = httpRequest(`${app.httpBase}/api/tenant/list`, { agent, headers: { "x-api-key": TEST_API_KEY } }, (res) => {
            res.resume();
            res.on("end", () => resolve({ reused: req.reusedSocket, port: req.socket?.localPort }));
          });
          req.on("error", reject).end();
        });
      try {
        const first = await get();
        const second = await get();
        assert.deepEqual([first.reused, second.reused], [false, true]);
        assert.equal(second.port, first.port);
      } finally {
        agent.destroy();
      }
    });
  });
});

describe("JSON /api gateway calling stub handlers in-process", () => {
  interface Received {
    name: string;
    ctx: CallContext;
    /** The reason ctx.signal aborted with, once it has (held calls only). */
    aborted: Promise<unknown>;
    answer(): void;
  }
  const received: Received[] = [];
  let gateway: Gateway;
  let base: string;

  /** The call the stub received for a request name, once it has. */
  const receivedCall = (name: string) => waitFor(`the call ${name}`, () => received.find((r) => r.name === name), { everyMs: 5 });

  // GetTenant's request name picks the stub's behaviour: `held` waits for answer() or an abort,
  // `missing` fails as a handler fails.
  const getTenant = (request: GetTenantRequest, ctx: CallContext) =>
    new Promise<Tenant>((resolve, reject) => {
      const { name } = request;
      const answer = () => resolve(Tenant.fromPartial({ name }));
      const held = name.startsWith("held");
      const aborted = !held
        ? Promise.resolve(undefined)
        : new Promise<unknown>((settle) =>
            ctx.signal.addEventListener("abort", () => {
              settle(ctx.signal.reason);
              reject(ctx.signal.reason as Error);
            }),
          );
      received.push({ name, ctx, aborted, answer });
      if (name === "missing") reject(new AppError("not_found", "tenant not found"));
      else if (!held) answer();
    });

  /** A gateway over the stub, with the real in-process dispatch and no middleware. */
  const stubGateway = (options: { maxBodyBytes?: number; deadlineMs?: number } = {}) => {
    const { invokers } = bindService({ getTenant: TenantServiceService.getTenant }, { getTenant }, (handler) => handler, quietLogger, requestScreens(loadRegistry(readDescriptor())));
    const unused: Invoker = () => Promise.reject(new Error("not stubbed"));
    return createGateway({
      descriptor: readDescriptor(),
      invokers: new Map(routes.map((route) => [route.grpcPath, invokers.get(route.grpcPath) ?? unused])),
      maxBodyBytes: options.maxBodyBytes ?? 1024 * 1024,
      deadlineMs: options.deadlineMs,
      logger: quietLogger,
      requestTimeoutMs: 30_000,
    });
  };

  before(async () => {
    gateway = stubGateway();
    base = `http://127.0.0.1:${await gateway.listen("127.0.0.1", 0)}`;
  });
  after(async () => {
    await gateway.close(1000);
  });

  it("refuses to start with a route whose method has no invoker", () => {
    assert.throws(
      () => createGateway({ descriptor: readDescriptor(), invokers: new Map(), maxBodyBytes: 1024, logger: quietLogger, requestTimeoutMs: 30_000 }),
      /no in-process invoker for \/qod\.v1\./,
    );
  });

  it("forwards request headers as lowercased metadata, minus hop-by-hop ones, decoding -bin values", async () => {
    const res = await fetch(`${base}/api/tenant/get?name=plain`, {
      headers: {
        "X-API-Key": "k",
        Authorization: "Bearer jwt",
        "Idempotency-Key": "idem-1",
        "X-Request-Id": "req-1",
        "X-Trace-Bin": Buffer.from([9, 8, 7]).toString("base64"),
        Connection: "keep-alive",
      },
    });
    assert.equal(res.status, 200);
    const { metadata } = received.at(-1)!.ctx;
    const value = (key: string) => metadata.get(key)[0];
    assert.deepEqual(
      ["x-api-key", "authorization", "idempotency-key", "x-request-id"].map(value),
      ["k", "Bearer jwt", "idem-1", "req-1"],
    );
    assert.deepEqual(value("x-trace-bin"), Buffer.from([9, 8, 7]));
    for (const hop of ["host", "connection", "content-length", "keep-alive"]) assert.deepEqual(metadata.get(hop), [], hop);
  });

  it("appends the client's address to x-forwarded-for, after whatever the client sent, and gives it as the peer", async () => {
    await fetch(`${base}/api/tenant/get?name=plain`);
    const { ctx } = received.at(-1)!;
    assert.equal(ctx.metadata.get("x-forwarded-for")[0], "127.0.0.1");
    // grpc-js's form of a peer: address:port.
    assert.match(ctx.peer, /^127\.0\.0\.1:\d+$/);
    await fetch(`${base}/api/tenant/get?name=plain`, { headers: { "X-Forwarded-For": "203.0.113.9" } });
    assert.equal(received.at(-1)!.ctx.metadata.get("x-forwarded-for")[0], "203.0.113.9, 127.0.0.1");
  });

  it("gives the call a deadline that fits provisioning", async () => {
    const before = Date.now();
    await fetch(`${base}/api/tenant/get?name=plain`);
    const { deadline } = received.at(-1)!.ctx;
    assert.ok(deadline !== undefined && deadline >= before + GATEWAY_DEADLINE_MS && deadline <= Date.now() + GATEWAY_DEADLINE_MS, `deadline in ${deadline! - before} ms`);
  });

  it("answers the call's response headers (x-request-id) and grpc-status: 0, as Envoy does", async () => {
    const res = await fetch(`${base}/api/tenant/get?name=plain`, { headers: { "X-Request-Id": "req-2" } });
    assert.deepEqual(await res.json(), { name: "plain", id: "", displayName: "", pools: [], disabled: false, authProvider: "", authConfig: {}, banned: false, banReason: "" });
    assert.equal(res.headers.get("x-request-id"), "req-2");
    assert.equal(res.headers.get("grpc-status"), "0");
  });

  it("answers a handler's error as Envoy answers its gRPC status: HTTP status, google.rpc.Status body, x-request-id", async () => {
    const res = await fetch(`${base}/api/tenant/get?name=missing`, { headers: { "X-Request-Id": "req-3" } });
    assert.equal(res.status, 404);
    const info = { "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "not_found", domain: "qod.v1", metadata: { requestId: "req-3" } };
    assert.deepEqual(await res.json(), { code: status.NOT_FOUND, message: "tenant not found", details: [info] });
    assert.equal(res.headers.get("x-request-id"), "req-3");
    assert.equal(res.headers.get("grpc-status"), null);
  });

  it("cancels the call when the HTTP client goes away: ctx.signal aborts CANCELLED, as on a gRPC cancel", async () => {
    const abort = new AbortController();
    const pending = fetch(`${base}/api/tenant/get?name=held-abort`, { signal: abort.signal }).catch(() => undefined);
    const call = await receivedCall("held-abort");
    abort.abort();
    await pending;
    assert.equal(((await call.aborted) as AppError).reason, "cancelled");
  });

  it("answers 504 when the route's timeout passes, as Envoy does, and cancels the call", async () => {
    const timing = stubGateway({ deadlineMs: 200 });
    const port = await timing.listen("127.0.0.1", 0);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/api/tenant/get?name=held-timeout`);
      assert.equal(res.status, 504);
      const body = (await res.json()) as { code: number; message: string; details: { reason: string }[] };
      assert.deepEqual([body.code, body.message, body.details[0]?.reason], [status.DEADLINE_EXCEEDED, "upstream request timeout", "deadline_exceeded"]);
      // The route's timeout and the call's deadline pass at once: whichever comes first aborts.
      const reason = ((await (await receivedCall("held-timeout")).aborted) as AppError).reason;
      assert.ok(["cancelled", "deadline_exceeded"].includes(reason), reason);
    } finally {
      await timing.close(1000);
    }
  });

  it("on close, finishes a request in flight and closes its keep-alive connection without waiting out the grace", async () => {
    const closing = stubGateway({ maxBodyBytes: 1024 });
    const port = await closing.listen("127.0.0.1", 0);
    const agent = new Agent({ keepAlive: true });
    const response = new Promise<{ status?: number; connection?: string }>((resolve, reject) => {
      httpRequest(`http://127.0.0.1:${port}/api/tenant/get?name=held-close`, { agent }, (res) => {
        res.resume();
        res.on("end", () => resolve({ status: res.statusCode, connection: res.headers.connection }));
      })
        .on("error", reject)
        .end();
    });
    const call = await receivedCall("held-close");
    const started = Date.now();
    const closed = closing.close(30_000);
    call.answer();
    assert.deepEqual(await response, { status: 200, connection: "close" });
    await closed;
    assert.ok(Date.now() - started < 5_000, `close took ${Date.now() - started} ms`);
    agent.destroy();
  });
});
