// The adapter on its own, no database: one bound method behind a bare grpc-js server, and the
// same method called through its in-process invoker.
import assert from "node:assert/strict";
import { Client, credentials, Metadata, Server, ServerCredentials, status, type ServiceError } from "@grpc/grpc-js";
import { GetTenantRequest, Tenant, TenantServiceService } from "../gen/qod/v1/tenant";
import { API_KEY_PRINCIPAL } from "../src/auth/principal";
import type { CallContext, Handler } from "../src/call/context";
import { metadataValue } from "../src/call/metadata";
import { AppError, statusDetails } from "../src/errors";
import { createLogger } from "../src/logger";
import { loadRegistry } from "../src/gateway/transcode";
import { bindService } from "../src/server/bind";
import type { CallInput, Invoker } from "../src/server/invoker";
import { authenticateMiddleware } from "../src/server/middleware/authenticate";
import { compose } from "../src/server/middleware/compose";
import { loggingMiddleware } from "../src/server/middleware/logging";
import { readDescriptor } from "../src/server/reflection";
import { requestScreens } from "../src/server/request-screen";
import { waitFor } from "./helpers/wait";

const API_KEY = "unary-test-key-0123456789";

describe("unary adapter", () => {
  let server: Server;
  let client: Client;
  let getTenant: Handler;
  let invoke: Invoker;
  const lines: Record<string, unknown>[] = [];

  before(async () => {
    server = new Server();
    const logger = createLogger("debug", { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    const handlers = { getTenant: (request: unknown, ctx: CallContext) => getTenant(request, ctx) };
    const { definition, implementation, invokers } = bindService(
      { getTenant: TenantServiceService.getTenant },
      handlers as never,
      compose([loggingMiddleware(logger), authenticateMiddleware({ authenticate: async (ctx) => (metadataValue(ctx.metadata, "x-api-key") === API_KEY ? API_KEY_PRINCIPAL : undefined) })]),
      logger,
      requestScreens(loadRegistry(readDescriptor())),
    );
    server.addService(definition, implementation);
    invoke = invokers.get("/qod.v1.TenantService/GetTenant")!;
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    client = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
  });
  after(() => {
    client.close();
    server.forceShutdown();
  });

  const call = (cancelAfterMs?: number, headers: Record<string, string> = { "x-api-key": API_KEY }, deadlineMs?: number) =>
    new Promise<ServiceError | null>((resolve) => {
      const md = new Metadata();
      for (const [k, v] of Object.entries(headers)) md.set(k, v);
      const options = deadlineMs === undefined ? {} : { deadline: Date.now() + deadlineMs };
      const c = client.makeUnaryRequest("/qod.v1.TenantService/GetTenant", (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), md, options, (err) => resolve(err));
      if (cancelAfterMs !== undefined) setTimeout(() => c.cancel(), cancelAfterMs);
    });

  it("aborts ctx.signal with CANCELLED when the client cancels while the handler runs", async () => {
    let seen: unknown;
    const aborted = new Promise<void>((resolve) => {
      getTenant = (_request, ctx) =>
        new Promise((_, reject) =>
          ctx.signal.addEventListener("abort", () => {
            seen = ctx.signal.reason;
            reject(ctx.signal.reason);
            resolve();
          }),
        );
    });
    const err = await call(50);
    assert.equal(err?.code, status.CANCELLED);
    await aborted;
    assert.equal((seen as { reason?: string }).reason, "cancelled");
  });

  it("leaves ctx.signal alone after a call that ended normally", async () => {
    let ctxOfCall: CallContext | undefined;
    getTenant = async (_request, ctx) => {
      ctxOfCall = ctx;
      return Tenant.fromPartial({});
    };
    assert.equal(await call(), null);
    await new Promise((r) => setTimeout(r, 50)); // grpc-js reports the stream's close a tick later
    assert.equal(ctxOfCall?.signal.aborted, false);
  });

  it("logs each call once at info: request id, method, surface, code, reason, principal, tenant, each key once", async () => {
    lines.length = 0;
    getTenant = async () => Tenant.fromPartial({});
    assert.equal(await call(undefined, { "x-api-key": API_KEY, "x-request-id": "ok-1" }), null);
    getTenant = async () => {
      throw new AppError("not_found", "tenant not found");
    };
    assert.equal((await call(undefined, { "x-api-key": API_KEY, "x-request-id": "nf-1" }))?.code, status.NOT_FOUND);
    assert.equal((await call(undefined, { "x-request-id": "anon-1" }))?.code, status.UNAUTHENTICATED);
    getTenant = async () => {
      throw new AppError("unavailable", "the state database does not answer");
    };
    assert.equal((await call(undefined, { "x-api-key": API_KEY, "x-request-id": "down-1" }))?.code, status.UNAVAILABLE);
    const method = "/qod.v1.TenantService/GetTenant";
    assert.deepEqual(
      lines.map(({ msg, requestId, method: m, surface, code, reason, principal, subject, tenant, level }) => ({ msg, requestId, method: m, surface, code, reason, principal, subject, tenant, level })),
      [
        { msg: "call", requestId: "ok-1", method, surface: "grpc", code: "OK", reason: undefined, principal: "api_key", subject: "api-key", tenant: undefined, level: 30 },
        { msg: "call failed", requestId: "nf-1", method, surface: "grpc", code: "NOT_FOUND", reason: "not_found", principal: "api_key", subject: "api-key", tenant: undefined, level: 30 },
        { msg: "call failed", requestId: "anon-1", method, surface: "grpc", code: "UNAUTHENTICATED", reason: "unauthenticated", principal: "none", subject: undefined, tenant: undefined, level: 30 },
        { msg: "call failed", requestId: "down-1", method, surface: "grpc", code: "UNAVAILABLE", reason: "unavailable", principal: "api_key", subject: "api-key", tenant: undefined, level: 40 },
      ],
    );
    for (const line of lines) assert.equal(typeof line.ms, "number");
  });

  // grpc-js ends a call itself when its deadline passes, which also reports a cancellation:
  // whichever comes first aborts the signal, as before the signal was made lazily.
  const ended = ["deadline_exceeded", "cancelled"];

  it("aborts ctx.signal when the deadline passes while the handler waits on it", async () => {
    let seen: unknown;
    getTenant = (_request, ctx) =>
      new Promise((_, reject) =>
        ctx.signal.addEventListener("abort", () => {
          seen = ctx.signal.reason;
          reject(ctx.signal.reason);
        }),
      );
    const err = await call(undefined, undefined, 100);
    assert.equal(err?.code, status.DEADLINE_EXCEEDED);
    await waitFor("the handler to see the abort", () => seen !== undefined);
    assert.ok(ended.includes((seen as { reason?: string }).reason ?? ""), String(seen));
  });

  it("gives an aborted ctx.signal to a handler that first reads it after the deadline", async () => {
    let aborted: boolean | undefined;
    let reason: unknown;
    const read = new Promise<void>((resolve) => {
      getTenant = async (_request, ctx) => {
        await waitFor("the deadline to pass", () => ctx.deadline !== undefined && Date.now() > ctx.deadline);
        aborted = ctx.signal.aborted;
        reason = ctx.signal.reason;
        resolve();
        return Tenant.fromPartial({});
      };
    });
    await call(undefined, undefined, 50);
    await read;
    assert.equal(aborted, true);
    assert.ok(ended.includes((reason as { reason?: string }).reason ?? ""), String(reason));
  });

  it("gives a signal that is not aborted to a call well within its deadline", async () => {
    let aborted: boolean | undefined;
    getTenant = async (_request, ctx) => {
      aborted = ctx.signal.aborted;
      return Tenant.fromPartial({});
    };
    assert.equal(await call(undefined, undefined, 30_000), null);
    assert.equal(aborted, false);
  });

  describe("in-process invoker", () => {
    /** A call as the gateway describes one; `cancel()` is the client going away. */
    const input = (headers: Record<string, string> = { "x-api-key": API_KEY }) => {
      const metadata = new Metadata();
      for (const [k, v] of Object.entries(headers)) metadata.set(k, v);
      let cancelListener: (() => void) | undefined;
      const call: CallInput = {
        surface: "rest",
        metadata,
        peer: "192.0.2.7:4000",
        deadline: Date.now() + 30_000,
        onCancel(listener) {
          cancelListener = listener;
          return () => (cancelListener = undefined);
        },
      };
      return { call, cancel: () => cancelListener?.() };
    };
    const request = GetTenantRequest.encode({ name: "acme" }).finish();

    it("runs the chain on the decoded request and answers the headers and the encoded response", async () => {
      let seen: { request: unknown; peer: string; deadline: number | undefined } | undefined;
      getTenant = async (req, ctx) => {
        seen = { request: req, peer: ctx.peer, deadline: ctx.deadline };
        return Tenant.fromPartial({ name: "acme", displayName: "Acme" });
      };
      const { call } = input({ "x-api-key": API_KEY, "x-request-id": "inproc-1" });
      const outcome = await invoke(request, call);
      assert.equal(outcome.error, undefined);
      assert.deepEqual(Tenant.decode(outcome.response), Tenant.fromPartial({ name: "acme", displayName: "Acme" }));
      assert.deepEqual(outcome.headers.get("x-request-id"), ["inproc-1"]);
      assert.deepEqual(seen, { request: GetTenantRequest.fromPartial({ name: "acme" }), peer: "192.0.2.7:4000", deadline: call.deadline });
    });

    it("answers the status a gRPC client gets: code, message and grpc-status-details-bin", async () => {
      getTenant = async () => {
        throw new AppError("not_found", "tenant not found");
      };
      const outcome = await invoke(request, input({ "x-api-key": API_KEY, "x-request-id": "inproc-2" }).call);
      assert.equal(outcome.error?.code, status.NOT_FOUND);
      assert.equal(outcome.error?.details, "tenant not found");
      assert.deepEqual(outcome.error?.metadata.get("grpc-status-details-bin"), [statusDetails(new AppError("not_found", "tenant not found"), "inproc-2")]);
      assert.equal((await invoke(request, input({}).call)).error?.code, status.UNAUTHENTICATED);
    });

    it("answers INVALID_ARGUMENT for bytes that are not the request message, as over gRPC", async () => {
      const outcome = await invoke(Uint8Array.of(0xff, 0xff, 0xff), input().call);
      assert.equal(outcome.error?.code, status.INVALID_ARGUMENT);
    });

    it("aborts ctx.signal with CANCELLED when the call is cancelled while the handler runs", async () => {
      let seen: unknown;
      let running!: () => void;
      const started = new Promise<void>((resolve) => (running = resolve));
      getTenant = (_request, ctx) =>
        new Promise((_, reject) => {
          ctx.signal.addEventListener("abort", () => {
            seen = ctx.signal.reason;
            reject(ctx.signal.reason);
          });
          running();
        });
      const { call, cancel } = input();
      const pending = invoke(request, call);
      await started;
      cancel();
      assert.equal((await pending).error?.code, status.CANCELLED);
      assert.equal((seen as { reason?: string }).reason, "cancelled");
    });

    it("answers INTERNAL, without the encoder's text, for a response that cannot be encoded", async () => {
      getTenant = async () => ({ name: 42 });
      const outcome = await invoke(request, input().call);
      assert.equal(outcome.error?.code, status.INTERNAL);
      assert.equal(outcome.error?.details, "internal error");
    });
  });
});
