// The client library in-process against a real server: credentials, per-call deadline, metadata
// and cancellation, and the error helpers. (cli-package.test.ts uses it from the packed package.)
import assert from "node:assert/strict";
import { status, type ServiceError } from "@grpc/grpc-js";
import { connect, createClients, DEFAULT_DEADLINE_MS, TENANT_SERVICE, type QodClients } from "../src/client/clients";
import { errorDetails, errorInfo } from "../src/client/errors";
import { startTestApp, TEST_API_KEY, type TestApp } from "./helpers/app";

const rejection = async (call: Promise<unknown>): Promise<ServiceError> => {
  try {
    await call;
  } catch (err) {
    return err as ServiceError;
  }
  assert.fail("the call succeeded");
};

describe("client library", () => {
  let app: TestApp;
  let qod: QodClients;

  before(async () => {
    app = await startTestApp();
    qod = createClients({ address: app.grpcAddress, apiKey: TEST_API_KEY });
  });
  after(async () => {
    qod?.close();
    await app?.stop();
  });

  it("sends the API key, or a token as Bearer, on every call", async () => {
    await qod.tenants.createTenant({ name: "lib_acme" });
    assert.deepEqual((await qod.tenants.listTenants()).tenants.map((t) => t.name), ["lib_acme"]);
    const { token } = await qod.auth.login({ username: "admin", password: "admin" });
    const asAdmin = createClients({ address: app.grpcAddress, token });
    try {
      assert.equal((await asAdmin.auth.whoAmI()).credential, "session");
    } finally {
      asAdmin.close();
    }
  });

  it("rejects two credentials, and one that is not printable ASCII, without repeating it", () => {
    assert.throws(() => createClients({ address: app.grpcAddress, apiKey: "a", token: "b" }), /give apiKey or token, not both/);
    assert.throws(() => createClients({ address: app.grpcAddress, apiKey: "sécret\n" }), (err: Error) => err instanceof TypeError && !err.message.includes("sécret"));
    assert.throws(() => createClients({ address: app.grpcAddress, deadlineMs: 0 }), RangeError);
    assert.equal(DEFAULT_DEADLINE_MS, 30_000);
  });

  it("decodes the ErrorInfo reason and BadRequest violations of a failed call", async () => {
    const missing = await rejection(qod.tenants.getTenant({ name: "nosuch" }));
    assert.equal(missing.code, status.NOT_FOUND);
    assert.deepEqual(errorInfo(missing)?.reason, "not_found");
    const invalid = errorDetails(await rejection(qod.tenants.createTenant({ name: "Bad Name!" })));
    assert.equal(invalid?.reason, "invalid_id");
    assert.equal(invalid?.domain, "qod.v1");
    assert.deepEqual(invalid?.fieldViolations.map((v) => v.field), ["name"]);
    const anonymous = createClients({ address: app.grpcAddress });
    try {
      assert.equal(errorInfo(await rejection(anonymous.tenants.listTenants()))?.reason, "unauthenticated");
    } finally {
      anonymous.close();
    }
    assert.equal(errorInfo(new Error("not a gRPC error")), undefined);
    assert.equal(errorDetails("nothing"), undefined);
  });

  it("a status without an ErrorInfo (an unreachable server) is reported by its code's name", async () => {
    const down = createClients({ address: "127.0.0.1:1", apiKey: "k", deadlineMs: 5_000 });
    try {
      const err = await rejection(down.tenants.listTenants());
      assert.equal(errorInfo(err), undefined);
      assert.deepEqual([errorDetails(err)?.code, errorDetails(err)?.reason], [status.UNAVAILABLE, "unavailable"]);
    } finally {
      down.close();
    }
  });

  it("per call: a deadline, extra metadata (an idempotency key) and an AbortSignal", async () => {
    const late = await rejection(qod.tenants.listTenants({}, { deadlineMs: 1 }));
    assert.equal(late.code, status.DEADLINE_EXCEEDED);

    const request = { tenant: "lib_acme", name: "once", kind: "memory" };
    const first = await qod.databases.createDatabase(request, { metadata: { "idempotency-key": "lib-key-1" } });
    const again = await qod.databases.createDatabase(request, { metadata: { "idempotency-key": "lib-key-1" } });
    assert.equal(again.id, first.id);

    const aborted = new AbortController();
    aborted.abort();
    assert.equal((await rejection(qod.tenants.listTenants({}, { signal: aborted.signal }))).code, status.CANCELLED);
  });

  it("connect() makes the same client for any generated service on one channel", async () => {
    const connection = connect({ address: app.grpcAddress, apiKey: TEST_API_KEY });
    try {
      const tenants = connection.client(TENANT_SERVICE);
      assert.equal((await tenants.getTenant({ name: "lib_acme" })).name, "lib_acme");
    } finally {
      connection.close();
    }
  });
});
