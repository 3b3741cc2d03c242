// The real process, as `npm start` runs it, driven by `buf curl` over reflection.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type AddressInfo } from "node:net";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort, processAlive } from "../src/db/embedded";
import { TEST_API_KEY } from "./helpers/app";
import { bufCurl, removeServerData, startServerProcess, type ServerProcess } from "./helpers/process";

describe("npm start with no configuration (embedded Postgres) and buf curl", function () {
  this.timeout(180_000);
  let dataDir: string;
  let server: ServerProcess | undefined;
  let grpcPort: number;
  let env: Record<string, string>;
  const base = () => `http://127.0.0.1:${grpcPort}`;
  const auth = ["-H", `x-api-key: ${TEST_API_KEY}`];

  before(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), "qod-e2e-"));
    grpcPort = await freePort();
    env = {
      QOD_DATA_DIR: dataDir,
      QOD_GRPC_PORT: String(grpcPort),
      QOD_HTTP_PORT: String(await freePort()),
      QOD_API_KEY: TEST_API_KEY,
      QOD_LOG_LEVEL: "info",
      // A fixed port, as the default 54320 is: the same at every start.
      QOD_EMBEDDED_PG_PORT: String(await freePort()),
    };
    server = await startServerProcess(env, grpcPort);
  });
  after(async () => {
    await server?.kill("SIGKILL");
    // A SIGKILLed server leaves its embedded Postgres behind; stop it so no process outlives the run.
    await removeServerData(dataDir);
  });

  it("lists the qod.v1 services and health through reflection", async () => {
    const listed = await bufCurl(["--list-services", base()]);
    assert.equal(listed.code, 0, listed.stderr);
    const services = listed.stdout.trim().split("\n").sort();
    assert.deepEqual(services, [
      "grpc.health.v1.Health",
      "qod.v1.AuthService",
      "qod.v1.DatabaseService",
      "qod.v1.PoolService",
      "qod.v1.SupavisorService",
      "qod.v1.TenantService",
    ]);
    const methods = await bufCurl(["--list-methods", base()]);
    assert.match(methods.stdout, /^qod\.v1\.TenantService\/CreateTenant$/m);
  });

  it("creates, reads and lists a tenant with a map field, and reports errors with their code", async () => {
    const body = JSON.stringify({ name: "acme", authProvider: "keycloak", authConfig: { issuer: "https://kc.example.com/realms/acme", realm: "acme", clientId: "qod" } });
    const created = await bufCurl([...auth, "-d", body, `${base()}/qod.v1.TenantService/CreateTenant`]);
    assert.equal(created.code, 0, created.stderr);
    assert.equal(JSON.parse(created.stdout).authConfig.realm, "acme");
    const got = await bufCurl([...auth, "-d", '{"name":"acme"}', `${base()}/qod.v1.TenantService/GetTenant`]);
    assert.equal(JSON.parse(got.stdout).authProvider, "keycloak");
    const listed = await bufCurl([...auth, "-d", "{}", `${base()}/qod.v1.TenantService/ListTenants`]);
    assert.deepEqual(JSON.parse(listed.stdout).tenants.map((t: { name: string }) => t.name), ["acme"]);

    const invalid = await bufCurl([...auth, "-d", '{"name":"no such; name"}', `${base()}/qod.v1.TenantService/CreateTenant`]);
    assert.equal(invalid.code, 8 * 3, "INVALID_ARGUMENT");
    assert.match(invalid.stderr, /google\.rpc\.ErrorInfo/);
    const duplicate = await bufCurl([...auth, "-d", '{"name":"acme"}', `${base()}/qod.v1.TenantService/CreateTenant`]);
    assert.equal(duplicate.code, 8 * 6, "ALREADY_EXISTS");
    const anonymous = await bufCurl(["-d", "{}", `${base()}/qod.v1.TenantService/ListTenants`]);
    assert.equal(anonymous.code, 8 * 16, "UNAUTHENTICATED");
  });

  it("recovers after SIGKILL: the next start stops the orphaned Postgres (which holds QOD_EMBEDDED_PG_PORT) and keeps the data and the port", async () => {
    const defaults = async () => {
      const answer = await bufCurl([...auth, "-d", "{}", `${base()}/qod.v1.DatabaseService/GetMetastoreDefaults`]);
      assert.equal(answer.code, 0, answer.stderr);
      return JSON.parse(answer.stdout) as { pgHost: string; pgPort: string };
    };
    const expected = { pgHost: "127.0.0.1", pgPort: env.QOD_EMBEDDED_PG_PORT };
    const before = await defaults();
    assert.deepEqual([before.pgHost, before.pgPort], [expected.pgHost, expected.pgPort]);
    await server?.kill("SIGKILL");
    server = await startServerProcess(env, grpcPort);
    const got = await bufCurl([...auth, "-d", '{"name":"acme"}', `${base()}/qod.v1.TenantService/GetTenant`]);
    assert.equal(got.code, 0, got.stderr);
    const after = await defaults();
    assert.deepEqual([after.pgHost, after.pgPort], [expected.pgHost, expected.pgPort]);
  });

  it("shuts down gracefully on SIGTERM, stopping its Postgres", async () => {
    const pid = Number(readFileSync(path.join(dataDir, "pg", "postmaster.pid"), "utf8").split("\n")[0]);
    assert.equal(await server?.kill("SIGTERM"), 0, server?.output());
    server = undefined;
    assert.equal(processAlive(pid), false, "embedded Postgres stopped");
    const output = readFileSync(path.join(dataDir, "secrets.json"), "utf8");
    assert.ok(output.length > 0, "generated secrets are kept under QOD_DATA_DIR");
  });

  it("does not start with a variable set but empty, and says which", async () => {
    const failed = await startServerProcess({ ...env, QOD_VAULT_ENC_KEY: "", QOD_PG_HOST: "" }, grpcPort).then(
      () => assert.fail("it started"),
      (err: Error) => err.message,
    );
    assert.match(failed, /QOD_PG_HOST: is set but empty; unset it to use its default, or give it a value\n {2}QOD_VAULT_ENC_KEY: is set but empty/);
  });

  it("does not start on a port in use, or on one port given twice, and says which variable to change", async () => {
    const grpc = await freePort();
    const blocker = createServer().listen(0, "127.0.0.1");
    await once(blocker, "listening");
    const busy = (blocker.address() as AddressInfo).port;
    try {
      for (const [extra, message] of [
        [{ QOD_EDGE_TX_PORT: String(busy) }, `QOD_EDGE_TX_PORT=${busy} is in use on 127.0.0.1`],
        [{ QOD_EMBEDDED_PG_PORT: String(busy) }, `QOD_EMBEDDED_PG_PORT=${busy} is in use on 127.0.0.1`],
        [{ QOD_EDGE_SESSION_PORT: String(grpc) }, `QOD_EDGE_SESSION_PORT=${grpc} is also QOD_GRPC_PORT`],
      ] as const) {
        const failed = await startServerProcess({ ...env, QOD_GRPC_PORT: String(grpc), ...extra }, grpc).then(
          () => assert.fail("it started"),
          (err: Error) => err.message,
        );
        assert.match(failed, new RegExp(`${message}: choose another port, or stop what uses it`));
      }
    } finally {
      blocker.close();
    }
  });
});
