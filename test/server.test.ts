// Cross-cutting behaviour of the gRPC server: status details, request ids, malformed input,
// deadlines and health.
import assert from "node:assert/strict";
import { Client, credentials, Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { BinaryReader, BinaryWriter } from "@bufbuild/protobuf/wire";
import { createApp } from "../src/app";
import { loadConfig } from "../src/config";
import { migrate } from "../src/db/migrate";
import { pgUrl } from "../src/db/pool";
import { connectState } from "../src/db/state";
import { startTestApp, TEST_API_KEY, TEST_SESSION_SECRET, TEST_VAULT_KEY, type TestApp } from "./helpers/app";
import { clientsFor, decodeError, expectError, metadataFor } from "./helpers/clients";
import { quietLogger, startPostgres, uniquePrefix } from "./helpers/postgres";

describe("gRPC server", () => {
  let app: TestApp;
  let raw: Client;

  before(async () => {
    app = await startTestApp();
    raw = new Client(app.grpcAddress, credentials.createInsecure());
  });
  after(async () => {
    raw.close();
    await app.stop();
  });

  function rawCall(path: string, bytes: Buffer, md: Metadata): Promise<{ err: ServiceError | null; headers: Metadata | undefined }> {
    return new Promise((resolve) => {
      let headers: Metadata | undefined;
      const call = raw.makeUnaryRequest(path, (b: Buffer) => b, (b: Buffer) => b, bytes, md, (err) => resolve({ err, headers }));
      call.on("metadata", (m) => (headers = m));
    });
  }

  it("answers INVALID_ARGUMENT, not INTERNAL, to bytes that are not a valid message", async () => {
    const { err } = await rawCall("/qod.v1.TenantService/CreateTenant", Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f]), metadataFor());
    assert.ok(err);
    const decoded = decodeError(err);
    assert.equal(decoded.code, status.INVALID_ARGUMENT);
    assert.equal(decoded.reason, "invalid_argument");
  });

  it("ignores a field sent with the wrong wire type, then validates what is left", async () => {
    // field 1 (name) as a varint instead of a string
    const { err } = await rawCall("/qod.v1.TenantService/CreateTenant", Buffer.from([0x08, 0x05]), metadataFor());
    assert.ok(err);
    assert.equal(decodeError(err).reason, "invalid_id");
  });

  it("echoes a client's x-request-id and carries it in ErrorInfo metadata", async () => {
    const md = metadataFor();
    md.set("x-request-id", "req-123");
    const { err, headers } = await rawCall("/qod.v1.TenantService/GetTenant", Buffer.from([0x0a, 0x03, 0x6e, 0x6f, 0x70]), md);
    assert.equal(headers?.get("x-request-id")[0], "req-123");
    assert.equal(decodeError(err as ServiceError).code, status.NOT_FOUND);
  });

  it("answers DEADLINE_EXCEEDED when the client's deadline has passed", async () => {
    const err = await app.clients.tenants.listTenants({}, { apiKey: TEST_API_KEY, deadlineMs: 1 }).catch((e: ServiceError) => e);
    assert.equal((err as ServiceError).code, status.DEADLINE_EXCEEDED);
  });

  it("never answers UNKNOWN or INTERNAL with SQL or stack traces in messages for hostile names", async () => {
    const hostile = ["'; SELECT pg_sleep(10); --", "\\x00", "a".repeat(10_000), "💥", "$1", "%s%s%s", "\u0000"];
    for (const name of hostile) {
      // NUL is refused before validation, for every string field (request-screen.ts).
      const reason = name.includes("\u0000") ? "invalid_character" : "invalid_id";
      const err = await expectError(app.clients.tenants.createTenant({ name }), status.INVALID_ARGUMENT, reason);
      assert.doesNotMatch(err.message, /select|insert|syntax|at \w+ \(/i);
    }
    const p = uniquePrefix();
    await app.clients.tenants.createTenant({ name: p });
    await expectError(app.clients.tenants.getTenant({ name: `${p}'--` }), status.INVALID_ARGUMENT, "invalid_id");
  });

  it("serves grpc.health.v1 for the server and each service", async () => {
    for (const service of ["", "qod.v1.TenantService", "qod.v1.PoolService", "qod.v1.DatabaseService", "qod.v1.AuthService"]) {
      // grpc.health.v1.HealthCheckRequest { string service = 1 } → HealthCheckResponse { ServingStatus status = 1 }
      const bytes = Buffer.from(new BinaryWriter().uint32(10).string(service).finish());
      const answer = await new Promise<Buffer>((resolve, reject) =>
        raw.makeUnaryRequest("/grpc.health.v1.Health/Check", (b: Buffer) => b, (b: Buffer) => b, bytes, new Metadata(), (err, res) => (err ? reject(err) : resolve(res as Buffer))),
      );
      const reader = new BinaryReader(answer);
      assert.equal(reader.uint32(), 8, "field 1, varint");
      assert.equal(reader.int32(), 1 /* SERVING */, service);
    }
  });
});

describe("when the state database goes down", function () {
  this.timeout(60_000);

  it("answers UNAVAILABLE with reason unavailable, and the process keeps running", async () => {
    const postgres = await startPostgres();
    const url = pgUrl(postgres.target, "postgres");
    await migrate(url, quietLogger);
    const state = await connectState(url, quietLogger, 4);
    const config = loadConfig({ QOD_GRPC_PORT: "0", QOD_HTTP_PORT: "0", QOD_METRICS_PORT: "0", QOD_API_KEY: TEST_API_KEY, QOD_SESSION_JWT_SECRET: TEST_SESSION_SECRET, QOD_VAULT_ENC_KEY: TEST_VAULT_KEY, QOD_LOG_LEVEL: "silent" });
    const app = createApp({ config, state, target: postgres.target, logger: quietLogger });
    try {
      const { grpcPort } = await app.start();
      const clients = clientsFor(`127.0.0.1:${grpcPort}`);
      try {
        await postgres.stop();
        await expectError(clients.tenants.listTenants({}), status.UNAVAILABLE, "unavailable");
        await expectError(clients.tenants.createTenant({ name: "down" }), status.UNAVAILABLE, "unavailable");
      } finally {
        clients.close();
      }
    } finally {
      await app.stop();
      await state.end().catch(() => {});
      await postgres.stop().catch(() => {});
    }
  });
});
