// The grpc-js adapter on its own: a bare server with one bound method, no database.
import assert from "node:assert/strict";
import { Client, credentials, Metadata, Server, ServerCredentials, status, type ServiceError } from "@grpc/grpc-js";
import pino from "pino";
import { TenantServiceService } from "../gen/qod/v1/tenant";
import type { CallContext, Handler } from "../src/server/context";
import { bindService } from "../src/server/unary";

describe("unary adapter", () => {
  let server: Server;
  let client: Client;
  let getTenant: Handler;

  before(async () => {
    server = new Server();
    const handlers = { getTenant: (request: unknown, ctx: CallContext) => getTenant(request, ctx) };
    const { definition, implementation } = bindService(
      { getTenant: TenantServiceService.getTenant },
      handlers as never,
      (h) => h,
      pino({ level: "silent" }),
    );
    server.addService(definition, implementation);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    client = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
  });
  after(() => {
    client.close();
    server.forceShutdown();
  });

  const call = (cancelAfterMs?: number) =>
    new Promise<ServiceError | null>((resolve) => {
      const c = client.makeUnaryRequest("/qod.v1.TenantService/GetTenant", (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), new Metadata(), (err) => resolve(err));
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
      return { tenant: undefined };
    };
    assert.equal(await call(), null);
    await new Promise((r) => setTimeout(r, 50)); // grpc-js reports the stream's close a tick later
    assert.equal(ctxOfCall?.signal.aborted, false);
  });
});
