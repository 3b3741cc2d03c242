// The data plane of `npm start`'s own process, with nothing configured but a data directory: the
// seed's Supavisor lines verbatim (curl on 4000, its psql line on 6543, the upstream Postgres on
// localhost:6432), a QOD pool on a DuckLake database provisioned in the embedded Postgres, a killed
// engine restarted with its routes and refusals intact, and no process left behind by a stop.
import assert from "node:assert/strict";
import { exec } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort, processAlive } from "../src/db/embedded";
import { sql } from "../src/db/sql";
import { TEST_API_KEY } from "./helpers/app";
import { pgClient, pgConnectError, psql, requireTools } from "./helpers/edge";
import { startPostgres, type TestPostgres } from "./helpers/postgres";
import { engineProcesses, removeServerData, startServerProcess, type ServerProcess } from "./helpers/process";
import { FIRST_PUT, PSQL_LINE, runCurl } from "./helpers/seed-lines";
import { waitFor } from "./helpers/wait";

/** Runs a shell line with `input` on its stdin, as a user typing into psql would. */
function shell(line: string, input: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = exec(line, { shell: "/bin/bash", timeout: 30_000, env: { PATH: "/usr/bin:/bin", HOME: tmpdir() } }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr }),
    );
    child.stdin?.end(input);
  });
}

describe("npm start's data plane, with the seed's lines and a provisioned DuckLake pool", function () {
  this.timeout(180_000);
  let upstream: TestPostgres;
  let server: ServerProcess | undefined;
  let dataDir: string;
  let httpPort: number;
  let poolPassword = "";
  const api = async (method: string, route: string, body?: unknown) => {
    const res = await fetch(`http://127.0.0.1:${httpPort}${route}`, {
      method,
      headers: { "x-api-key": TEST_API_KEY, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, json: (await res.json()) as Record<string, any> };
  };

  before(async () => {
    requireTools();
    upstream = await startPostgres({ port: 6432, password: "postgres" });
    dataDir = mkdtempSync(path.join(tmpdir(), "qod-dp-"));
    const grpcPort = await freePort();
    httpPort = await freePort();
    // The seed's ports (4000, 6543, 5432) are npm start's defaults.
    server = await startServerProcess(
      {
        QOD_DATA_DIR: dataDir,
        QOD_GRPC_PORT: String(grpcPort),
        QOD_HTTP_PORT: String(httpPort),
        QOD_API_KEY: TEST_API_KEY,
        API_JWT_SECRET: "dev",
        QOD_DEV_INSECURE_SECRETS: "true",
        QOD_EDGE_TX_PORT: "6543",
        QOD_EDGE_SESSION_PORT: "5432",
        QOD_SUPAVISOR_HTTP_PORT: "4000",
      },
      grpcPort,
    );
  });
  after(async () => {
    await server?.kill("SIGKILL");
    await removeServerData(dataDir);
    await upstream?.stop();
  });

  it("serves the seed's psql line, on both ports, after the seed's curl line", async () => {
    const created = await runCurl(FIRST_PUT);
    assert.equal(created.status, 200, created.body);
    await waitFor("dev_tenant to be served", async () => (await pgConnectError(6543, "postgres.dev_tenant", "postgres", "postgres")) === undefined, { timeoutMs: 5_000 });
    const typed = await shell(PSQL_LINE, "select current_user, current_setting('port');\n");
    assert.equal(typed.code, 0, typed.stderr);
    assert.match(typed.stdout, /postgres +\| 6432/);
    const session = await shell(PSQL_LINE.replace(":6543/", ":5432/"), "select 42 as answer;\n");
    assert.match(session.stdout, /42/, session.stderr);
    const tls = await psql("postgresql://postgres.dev_tenant@localhost:6543/postgres?sslmode=require", "postgres", "select 1");
    assert.deepEqual([tls.code, tls.stdout], [0, "1"], tls.stderr); // sslmode=require fails without TLS
    // require_user is false, yet a role found only through auth_query is refused, saying why.
    await upstream.admin.query(sql.typeAlias("void")`CREATE ROLE lookup_only LOGIN PASSWORD 'lookup-pw'`);
    const lookup = await pgConnectError(6543, "lookup_only.dev_tenant", "lookup-pw", "postgres");
    assert.equal(lookup?.code, "28000");
    assert.match(lookup?.message ?? "", /register/);
  });

  it("serves a QOD pool on a DuckLake database of the embedded Postgres, with SCRAM to psql and node-postgres", async () => {
    assert.equal((await api("POST", "/api/tenant/create", { name: "acme" })).status, 200);
    const db = await api("POST", "/api/database/create", { tenant: "acme", name: "sales", defaultSchema: "mart" });
    assert.equal(db.json.status, "READY", JSON.stringify(db.json));
    const created = await api("POST", "/api/pool/create", { tenant: "acme", tenantDb: "sales", pool: "bi", size: 2 });
    assert.equal(created.status, 200, JSON.stringify(created.json));
    const { user, database, password } = created.json as { user: string; database: string; password: string };
    poolPassword = password;
    assert.deepEqual([user, database], ["bi.acme", "acme_sales"]);
    const url = `postgresql://bi.acme@localhost:6543/acme_sales`;
    await waitFor("the pool to be served", async () => (await pgConnectError(6543, user, password, database)) === undefined, { timeoutMs: 5_000 });
    const viaPsql = await psql(url, password, "select count(*) from ducklake_metadata");
    assert.equal(viaPsql.code, 0, viaPsql.stderr);
    const client = await pgClient(5432, user, password, database);
    assert.equal((await client.query("select current_database() as d")).rows[0].d, "acme_sales");
    await client.end();
  });

  it("restarts a killed engine with its routes, and a disabled pool stays refused", async () => {
    const disabled = await api("POST", "/api/pool/setDisabled", { tenant: "acme", pool: "bi", disabled: true });
    assert.equal(disabled.status, 200, JSON.stringify(disabled.json));
    const [engine, ...others] = engineProcesses(dataDir);
    assert.ok(engine !== undefined && others.length === 0, "one engine (one upstream TLS profile)");
    process.kill(engine, "SIGKILL");
    await waitFor("a new engine", () => engineProcesses(dataDir).some((pid) => pid !== engine), { timeoutMs: 10_000 });
    await waitFor("dev_tenant to be served again", async () => (await pgConnectError(6543, "postgres.dev_tenant", "postgres", "postgres")) === undefined, { timeoutMs: 10_000 });
    const refused = await pgConnectError(6543, "bi.acme", poolPassword, "acme_sales");
    assert.equal(refused?.code, "55000");
  });

  it("leaves no engine behind: a SIGKILLed service's engine is stopped by the next start, and SIGTERM stops its own", async () => {
    const engines = engineProcesses(dataDir);
    assert.equal(await server?.kill("SIGKILL"), "SIGKILL");
    assert.ok(engines.every(processAlive), "SIGKILL leaves the children running");
    const grpcPort = await freePort();
    server = await startServerProcess({ QOD_DATA_DIR: dataDir, QOD_GRPC_PORT: String(grpcPort), QOD_HTTP_PORT: String(httpPort), QOD_API_KEY: TEST_API_KEY }, grpcPort);
    await waitFor("the orphaned engines to stop", () => engines.every((pid) => !processAlive(pid)), { timeoutMs: 10_000 });
    const running = engineProcesses(dataDir);
    assert.ok(running.length > 0);
    assert.equal(await server.kill("SIGTERM"), 0, server.output());
    server = undefined;
    assert.deepEqual(running.filter(processAlive), []);
  });
});
