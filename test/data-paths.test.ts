// Holes 5 and 6 of issue 11: where a tenant admin may point a database's data (its tenant's own
// root, or an object store), and that only superusers (or an allow-list) name a metastore server
// or its credentials, answered before any connection, over gRPC and REST.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:net";
import { status } from "@grpc/grpc-js";
import { DatabaseStatus } from "../gen/qod/v1/database";
import { startTestApp, TEST_API_KEY, type TestApp } from "./helpers/app";
import { expectError, type CallOptions } from "./helpers/clients";
import { dropDatabasesWithPrefix } from "./helpers/databases";
import { sharedPostgres, uniquePrefix } from "./helpers/postgres";
import { expectRestError, rest } from "./helpers/rest";
import { dumpState } from "./helpers/state-dump";

describe("data paths and metastore servers (issue 11, holes 5 and 6)", () => {
  let app: TestApp;
  let closed: Server;
  let closedPort: number;
  let listening: Server;
  let listeningPort: number;
  const a = uniquePrefix("dpa");
  const b = uniquePrefix("dpb");
  let admin: CallOptions;
  let dataRoot: string;
  let dataDir: string;

  before(async () => {
    // A port that listens (but speaks no Postgres) and one that refuses: a tenant admin's answer must not differ.
    listening = createServer((socket) => socket.destroy());
    closed = createServer();
    listeningPort = await new Promise<number>((resolve) => listening.listen(0, "127.0.0.1", () => resolve((listening.address() as { port: number }).port)));
    closedPort = await new Promise<number>((resolve) => closed.listen(0, "127.0.0.1", () => resolve((closed.address() as { port: number }).port)));
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    app = await startTestApp({ env: { QOD_METASTORE_ALLOWED_HOSTS: `127.0.0.1:${closedPort}, allowed.example` } });
    dataRoot = app.config.dataPath;
    dataDir = app.config.dataDir;
    await app.clients.tenants.createTenant({ name: a });
    await app.clients.tenants.createTenant({ name: b });
    await app.clients.auth.createUser({ tenant: a, username: "boss", password: "a tenant admin's password", role: "admin" });
    admin = { apiKey: (await app.clients.auth.login({ tenant: a, username: "boss", password: "a tenant admin's password" }, {})).token };
  });
  after(async () => {
    await app.stop();
    listening.close();
    await dropDatabasesWithPrefix(sharedPostgres(), a);
  });

  /** A create by A's admin is refused with `reason` over gRPC and REST, and changes nothing. */
  async function refused(request: Record<string, unknown>, code: status, reason: string, httpStatus: number, auth: CallOptions = admin): Promise<void> {
    const before = await dumpState(app.pool);
    await expectError(app.clients.databases.createDatabase({ tenant: a, ...request }, auth), code, reason);
    expectRestError(await rest(app, "POST", "/api/database/create", { auth, body: { tenant: a, ...request } }), httpStatus, code, reason);
    assert.equal(await dumpState(app.pool), before);
  }

  describe("dataPath", () => {
    const cases: [string, () => Record<string, unknown>][] = [
      ["another tenant's derived path", () => ({ name: "x1", dataPath: `${dataRoot}/${b}/sales` })],
      ["the derived path of a tenant whose name extends its own (`<a>_x`'s root is not `<a>`'s database `x`)", () => ({ name: "x0", dataPath: `${dataRoot}/${a}_x/mine` })],
      ["another tenant's root", () => ({ name: "x2", dataPath: `${dataRoot}/${b}/mine` })],
      ["a ../ path out of its own root", () => ({ name: "x3", dataPath: `${dataRoot}/${a}/../${b}/x` })],
      ["a ../ path that stays in its own root", () => ({ name: "x4", dataPath: `${dataRoot}/${a}/x/../y` })],
      ["the service's data directory", () => ({ name: "x5", dataPath: dataDir })],
      ["a file in the data directory", () => ({ name: "x6", kind: "duckdb-file", dataPath: `${dataDir}/secrets.json.duckdb` })],
      ["/root/../etc/x.duckdb", () => ({ name: "x7", kind: "duckdb-file", dataPath: "/root/../etc/x.duckdb" })],
      ["any other filesystem path", () => ({ name: "x8", kind: "duckdb-file", dataPath: "/srv/x.duckdb" })],
      ["an object-store URI with a .. segment", () => ({ name: "x9", dataPath: "s3://bucket/lake/../other" })],
      ["its own root with // and . (the lake root itself)", () => ({ name: "xa", dataPath: `${dataRoot}/./` })],
    ];
    for (const [label, request] of cases) {
      it(`refuses ${label} for a tenant admin`, async () => {
        await refused(request(), status.INVALID_ARGUMENT, "invalid_data_path", 400);
      });
    }

    it("accepts, normalised, a path under the tenant's own root and an object-store URI for a tenant admin", async () => {
      const own = await app.clients.databases.createDatabase({ tenant: a, name: "own", kind: "duckdb-file", dataPath: `${dataRoot}/${a}//files/./own.duckdb` }, admin);
      assert.equal(own.dataPath, `${dataRoot}/${a}/files/own.duckdb`);
      assert.equal(own.status, DatabaseStatus.READY);
      const res = await rest(app, "POST", "/api/database/create", { auth: admin, body: { tenant: a, name: "lake", kind: "duckdb-file", dataPath: "s3://bucket//lake/./x.duckdb" } });
      assert.equal(res.status, 200, res.text);
      assert.equal((res.json as { dataPath: string }).dataPath, "s3://bucket/lake/x.duckdb");
    });

    it("derives a database's data path inside its tenant's own root, where its admin may also point", async () => {
      const derived = await app.clients.databases.createDatabase({ tenant: a, name: "derived" }, admin);
      assert.equal(derived.effectiveDataPath, `${dataRoot}/${a}/derived/`);
      const named = await app.clients.databases.createDatabase({ tenant: a, name: "named", dataPath: `${dataRoot}/${a}/derived/more` }, admin);
      assert.equal(named.effectiveDataPath, `${dataRoot}/${a}/derived/more/`);
    });

    it("refuses .. segments and the data directory to superusers too, and lets them name any other path", async () => {
      await refused({ name: "s1", kind: "duckdb-file", dataPath: "/root/../etc/x.duckdb" }, status.INVALID_ARGUMENT, "invalid_data_path", 400, { apiKey: TEST_API_KEY });
      await refused({ name: "s2", kind: "duckdb-file", dataPath: `${dataDir}/pg/base.duckdb` }, status.INVALID_ARGUMENT, "invalid_data_path", 400, { apiKey: TEST_API_KEY });
      const database = await app.clients.databases.createDatabase({ tenant: a, name: "anywhere", kind: "duckdb-file", dataPath: "/srv/files/x.duckdb" });
      assert.equal(database.dataPath, "/srv/files/x.duckdb");
    });
  });

  describe("metastore server and credentials", () => {
    it("refuses a tenant admin's pgHost/pgPort with one answer, whatever listens there, before connecting", async () => {
      for (const port of [listeningPort, closedPort + 1]) {
        await refused({ name: "m1", metastore: { pgHost: "127.0.0.1", pgPort: String(port) } }, status.PERMISSION_DENIED, "superuser_required", 403);
      }
      await refused({ name: "m1", metastore: { PGHOST: "10.0.0.1" } }, status.PERMISSION_DENIED, "superuser_required", 403);
    });

    it("refuses a tenant admin's pgUser or pgPassword on the shared server (a password oracle)", async () => {
      await refused({ name: "m2", metastore: { pgUser: "postgres", pgPassword: "guess" } }, status.PERMISSION_DENIED, "superuser_required", 403);
      await refused({ name: "m2", metastore: { pgPassword: "guess" } }, status.PERMISSION_DENIED, "superuser_required", 403);
    });

    it("refuses a tenant admin's credentials in an update", async () => {
      await app.clients.databases.createDatabase({ tenant: a, name: "upd", kind: "duckdb-file", dataPath: `${dataRoot}/${a}/upd.duckdb` }, admin);
      await expectError(app.clients.databases.updateDatabase({ tenant: a, name: "upd", metastore: { pgPassword: "guess" } }, admin), status.PERMISSION_DENIED, "superuser_required");
      const res = await rest(app, "POST", "/api/database/update", { auth: admin, body: { tenant: a, name: "upd", metastore: { pgUser: "postgres" } } });
      expectRestError(res, 403, status.PERMISSION_DENIED, "superuser_required");
    });

    it("lets a tenant admin name a server on QOD_METASTORE_ALLOWED_HOSTS (then the server answers), and a superuser any", async () => {
      await expectError(
        app.clients.databases.createDatabase({ tenant: a, name: "m3", metastore: { pgHost: "127.0.0.1", pgPort: String(closedPort) } }, admin),
        status.UNAVAILABLE,
        "unavailable",
      );
      await expectError(app.clients.databases.createDatabase({ tenant: a, name: "m4", metastore: { pgHost: "127.0.0.1", pgPort: String(closedPort) } }), status.UNAVAILABLE, "unavailable");
    });
  });
});
