// The seed page (QOD's "Tenants and databases") works as written: its curl lines run verbatim,
// in order, against the real process with `npm start` defaults (embedded Postgres, admin/admin).
// Only the port differs, so the test never collides with a server already on 20900.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort } from "../src/db/embedded";
import { removeServerData, startServerProcess, type ServerProcess } from "./helpers/process";

/** The seed's commands, copied from the page; `$TOKEN` comes from its login line. */
const LOGIN = `TOKEN=$(curl -sS -X POST http://localhost:20900/api/auth/login \\
-H 'Content-Type: application/json' \\
-d '{"username":"admin","password":"admin"}' \\
| python3 -c 'import sys,json; print(json.load(sys.stdin)["token"])')`;
const CREATE_TENANT = `curl -sS -H "X-API-Key: $TOKEN" -X POST http://localhost:20900/api/tenant/create \\
-H 'Content-Type: application/json' \\
-d '{"name":"acme"}'`;
const CREATE_OIDC_TENANT = `curl -sS -H "X-API-Key: $TOKEN" -X POST http://localhost:20900/api/tenant/create \\
-H 'Content-Type: application/json' \\
-d '{"name":"acme","authProvider":"keycloak",
"authConfig":{"issuer":"https://kc.example.com/realms/acme","realm":"acme"}}'`;
const LIST_TENANTS = `curl -sS -H "X-API-Key: $TOKEN" http://localhost:20900/api/tenant/list`;
const DISABLE = `curl -sS -H "X-API-Key: $TOKEN" -X POST http://localhost:20900/api/tenant/setDisabled \\
-H 'Content-Type: application/json' -d '{"name":"acme","disabled":true}'`;
const SET_AUTH = `curl -sS -H "X-API-Key: $TOKEN" -X POST http://localhost:20900/api/tenant/setAuth \\
-H 'Content-Type: application/json' \\
-d '{"name":"acme","authProvider":"db","authConfig":{}}'`;
const DELETE_TENANT = `curl -sS -H "X-API-Key: $TOKEN" -X POST http://localhost:20900/api/tenant/delete \\
-H 'Content-Type: application/json' -d '{"name":"acme"}'`;
const CREATE_DATABASE = `curl -sS -H "X-API-Key: $TOKEN" -X POST http://localhost:20900/api/database/create \\
-H 'Content-Type: application/json' \\
-d '{"tenant":"acme","name":"sales","kind":"ducklake",
"dataPath":"/app/ducklake/acme_sales",
"defaultSchema":"mart"}'`;
const LIST_DATABASES = `curl -sS -H "X-API-Key: $TOKEN" \\
'http://localhost:20900/api/database/list?tenant=acme'`;
const DELETE_DATABASE = `curl -sS -H "X-API-Key: $TOKEN" -X POST http://localhost:20900/api/database/delete \\
-H 'Content-Type: application/json' -d '{"tenant":"acme","name":"sales"}'`;
/** Not on the seed page (pools have their own page): SPEC §3's pool example, for the has_pools cases. */
const CREATE_POOL = `curl -sS -H "X-API-Key: $TOKEN" -X POST http://localhost:20900/api/pool/create \\
-H 'Content-Type: application/json' -d '{"tenant":"acme","tenantDb":"acme_sales","pool":"bi","size":2}'`;
const DELETE_POOL = `curl -sS -H "X-API-Key: $TOKEN" -X POST http://localhost:20900/api/pool/delete \\
-H 'Content-Type: application/json' -d '{"tenant":"acme","pool":"bi"}'`;

describe("the seed page's curl examples, verbatim, against npm start defaults", function () {
  this.timeout(180_000);
  let dataDir: string;
  let server: ServerProcess | undefined;
  let httpPort: number;
  let token = "";

  /** Runs one seed command in bash with the session token; returns its parsed JSON output. */
  function run(command: string): Promise<any> {
    const script = command.replaceAll("localhost:20900", `localhost:${httpPort}`);
    return new Promise((resolve, reject) => {
      execFile("bash", ["-c", `set -eo pipefail\n${script}`], { env: { ...process.env, TOKEN: token } }, (err, stdout, stderr) => {
        if (err) return reject(new Error(`${script}\n${stderr}`));
        try {
          resolve(JSON.parse(stdout));
        } catch {
          reject(new Error(`not JSON: ${stdout}`));
        }
      });
    });
  }

  before(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), "qod-seed-"));
    const grpcPort = await freePort();
    httpPort = await freePort();
    // Nothing but ports and a private data directory: every other setting is npm start's default.
    server = await startServerProcess({ QOD_DATA_DIR: dataDir, QOD_GRPC_PORT: String(grpcPort), QOD_HTTP_PORT: String(httpPort) }, grpcPort);
  });
  after(async () => {
    await server?.kill("SIGTERM");
    await removeServerData(dataDir);
  });

  it("logs in as admin/admin and keeps the token", async () => {
    const script = `${LOGIN.replaceAll("localhost:20900", `localhost:${httpPort}`)}\necho "$TOKEN"`;
    token = await new Promise<string>((resolve, reject) =>
      execFile("bash", ["-c", `set -eo pipefail\n${script}`], (err, stdout, stderr) => (err ? reject(new Error(stderr)) : resolve(stdout.trim()))),
    );
    assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
  });

  it("creates a tenant with {name}", async () => {
    const tenant = await run(CREATE_TENANT);
    assert.equal(tenant.name, "acme");
    assert.equal(tenant.authProvider, "db");
    assert.deepEqual(tenant.pools, []);
  });

  it("lists every tenant with its pools and auth provider", async () => {
    const { tenants } = await run(LIST_TENANTS);
    assert.deepEqual(tenants.map((t: any) => [t.name, t.pools, t.authProvider]), [["acme", [], "db"]]);
  });

  it("disables the tenant", async () => {
    assert.equal((await run(DISABLE)).disabled, true);
  });

  it("switches the auth provider", async () => {
    const tenant = await run(SET_AUTH);
    assert.equal(tenant.authProvider, "db");
    assert.deepEqual(tenant.authConfig, {});
  });

  it("creates the database acme_sales with its DuckLake catalog", async () => {
    const db = await run(CREATE_DATABASE);
    assert.equal(db.name, "acme_sales");
    assert.equal(db.kind, "ducklake");
    assert.equal(db.defaultSchema, "mart");
    assert.equal(db.status, "READY");
  });

  it("lists the tenant's databases", async () => {
    const { tenantDbs } = await run(LIST_DATABASES);
    assert.deepEqual(tenantDbs.map((d: any) => d.name), ["acme_sales"]);
  });

  it("answers 409 has_pools for the database and the tenant while a pool is in place", async () => {
    assert.equal((await run(CREATE_POOL)).pool, "bi");
    for (const command of [DELETE_DATABASE, DELETE_TENANT]) {
      const status = await run(command);
      assert.equal(status.code, 10, "ABORTED");
      assert.equal(status.details[0]["@type"], "type.googleapis.com/google.rpc.ErrorInfo");
      assert.equal(status.details[0].reason, "has_pools");
    }
  });

  it("deletes the database, then the tenant, once the pool is gone", async () => {
    assert.deepEqual(await run(DELETE_POOL), {});
    assert.deepEqual(await run(DELETE_DATABASE), {});
    assert.deepEqual(await run(DELETE_TENANT), {});
    assert.deepEqual((await run(LIST_TENANTS)).tenants, []);
  });

  it("creates a tenant whose users log in through keycloak", async () => {
    const tenant = await run(CREATE_OIDC_TENANT);
    assert.equal(tenant.authProvider, "keycloak");
    assert.deepEqual(tenant.authConfig, { issuer: "https://kc.example.com/realms/acme", realm: "acme" });
  });
});
