// `npm start` against an external state database that is not there (yet): it retries with backoff
// for QOD_PG_CONNECT_TIMEOUT_SEC, logging each retry at warn, then stops naming the state database
// and the variables; a server that comes up during the wait is used; a refused login stops at once.
// Real processes, a real Postgres started on the port the service is waiting for.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort } from "../src/db/embedded";
import { TEST_API_KEY } from "./helpers/app";
import { sharedPostgres, startPostgres, type TestPostgres } from "./helpers/postgres";
import { removeServerData, spawnServerProcess, waitUntilServing, type ServerProcess } from "./helpers/process";
import { waitFor } from "./helpers/wait";

const PASSWORD = "planted-pg-password-7Qx";

describe("npm start with an external state database that cannot be reached", function () {
  this.timeout(120_000);
  const dataDirs: string[] = [];
  const servers: ServerProcess[] = [];

  async function spawn(extra: Record<string, string>): Promise<{ server: ServerProcess; grpcPort: number }> {
    const dataDir = mkdtempSync(path.join(tmpdir(), "qod-reach-"));
    dataDirs.push(dataDir);
    const grpcPort = await freePort();
    const server = await spawnServerProcess({
      QOD_DATA_DIR: dataDir,
      QOD_GRPC_PORT: String(grpcPort),
      QOD_HTTP_PORT: String(await freePort()),
      QOD_API_KEY: TEST_API_KEY,
      QOD_EDGE: "off",
      QOD_LOG_LEVEL: "info",
      // Not the default password, whose warning is not this test's.
      QOD_ADMIN_PASSWORD: "state-connect-admin",
      ...extra,
    });
    servers.push(server);
    return { server, grpcPort };
  }
  /** The process's warn lines (pino level 40). */
  const warnings = (server: ServerProcess) =>
    server
      .output()
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((line) => line.level === 40);

  after(async () => {
    await Promise.all(servers.map((s) => s.kill("SIGTERM")));
    for (const dir of dataDirs) await removeServerData(dir);
  });

  it("retries for QOD_PG_CONNECT_TIMEOUT_SEC, then names the state database and the variables (host and port, or the URL); never the password", async () => {
    const port = await freePort(); // nothing listens there
    const started = Date.now();
    const [parts, url] = await Promise.all([
      spawn({ QOD_PG_HOST: "127.0.0.1", QOD_PG_PORT: String(port), QOD_PG_PASSWORD: PASSWORD, QOD_PG_DBNAME: "qod_state", QOD_PG_CONNECT_TIMEOUT_SEC: "2" }),
      spawn({ QOD_PG_URL: `postgres://qod:${PASSWORD}@127.0.0.1:${port}/ignored`, QOD_PG_CONNECT_TIMEOUT_SEC: "0" }),
    ]);
    assert.equal(await parts.server.exited, 1);
    assert.ok(Date.now() - started >= 2000, "it kept trying for the timeout");
    const partsOutput = parts.server.output();
    assert.match(
      partsOutput,
      new RegExp(
        `qod failed to start: cannot reach the server of the state database "qod_state" at 127\\.0\\.0\\.1:${port} \\(QOD_PG_HOST, QOD_PG_PORT\\): ` +
          `connect ECONNREFUSED 127\\.0\\.0\\.1:${port}; gave up after \\d+ tries over 2 s \\(QOD_PG_CONNECT_TIMEOUT_SEC=2\\)\\n`,
      ),
    );
    const retries = warnings(parts.server);
    assert.ok(retries.length >= 2, partsOutput);
    for (const line of retries) {
      assert.equal(line.msg, "the state database's server cannot be reached yet; retrying");
      assert.deepEqual([line.host, line.port, line.user, line.database, line.variables], ["127.0.0.1", port, "postgres", "qod_state", "QOD_PG_HOST, QOD_PG_PORT"]);
      assert.equal(line.error, `connect ECONNREFUSED 127.0.0.1:${port}`);
    }
    assert.ok(!partsOutput.includes(PASSWORD));
    assert.ok(!partsOutput.includes("    at "), "no stack trace");

    assert.equal(await url.server.exited, 1);
    const urlOutput = url.server.output();
    assert.match(urlOutput, new RegExp(`cannot reach the server of the state database "qod" at 127\\.0\\.0\\.1:${port} \\(QOD_PG_URL\\): .*; tried once \\(QOD_PG_CONNECT_TIMEOUT_SEC=0\\)\\n`));
    assert.deepEqual(warnings(url.server), [], "no retry with a timeout of 0");
    assert.ok(!urlOutput.includes(PASSWORD));
  });

  it("stops at once when the server refuses the login, naming QOD_PG_USER and QOD_PG_PASSWORD", async () => {
    const { host, port } = sharedPostgres().target;
    const started = Date.now();
    const { server } = await spawn({ QOD_PG_HOST: host, QOD_PG_PORT: String(port), QOD_PG_PASSWORD: PASSWORD, QOD_PG_CONNECT_TIMEOUT_SEC: "30" });
    assert.equal(await server.exited, 1);
    assert.ok(Date.now() - started < 20_000, "no retries");
    assert.match(server.output(), new RegExp(`qod failed to start: the state database's server ${host}:${port} refused the login of user "postgres" \\(QOD_PG_USER, QOD_PG_PASSWORD\\): password authentication failed for user "postgres"\\n`));
    assert.deepEqual(warnings(server), []);
    assert.ok(!server.output().includes(PASSWORD));
  });

  describe("a server that comes up during the wait", () => {
    let postgres: TestPostgres | undefined;
    let service: ServerProcess | undefined;
    after(async () => {
      await service?.kill("SIGTERM");
      await postgres?.stop();
    });

    it("is used once it answers", async () => {
      const port = await freePort();
      const { server, grpcPort } = await spawn({ QOD_PG_HOST: "127.0.0.1", QOD_PG_PORT: String(port), QOD_PG_PASSWORD: PASSWORD, QOD_PG_CONNECT_TIMEOUT_SEC: "90" });
      service = server;
      await waitFor(() => `a retry line:\n${server.output()}`, () => warnings(server).length > 0, { timeoutMs: 30_000 });
      postgres = await startPostgres({ port, password: PASSWORD });
      await waitUntilServing(server, grpcPort, 60_000);
      const lines = warnings(server);
      assert.ok(lines.every((line) => line.msg === "the state database's server cannot be reached yet; retrying"), server.output());
      assert.match(server.output(), /"msg":"created the state database"/);
    });
  });
});
