// What an external Postgres user needs (README "An external Postgres"): LOGIN, CREATEDB and
// CREATEROLE, never SUPERUSER. npm start runs as such a user on the run's Postgres: it creates and
// migrates its state database, provisions a DuckLake database, makes a pool's role and drops it.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Client } from "pg";
import { z } from "zod";
import { freePort } from "../src/db/embedded";
import { sql } from "../src/db/sql";
import { TEST_API_KEY } from "./helpers/app";
import { sharedPostgres, uniquePrefix } from "./helpers/postgres";
import { removeServerData, startServerProcess, type ServerProcess } from "./helpers/process";

describe("npm start as an external Postgres user with CREATEDB and CREATEROLE only", function () {
  this.timeout(120_000);
  const p = uniquePrefix("xu");
  const role = `${p}_operator`;
  const password = randomBytes(12).toString("hex");
  const stateDatabase = `${p}_state`;
  let dataDir: string;
  let server: ServerProcess | undefined;
  let httpBase = "";
  const admin = () => sharedPostgres().admin;

  async function call(route: string, body?: unknown): Promise<any> {
    const res = await fetch(`${httpBase}${route}`, {
      method: body === undefined ? "GET" : "POST",
      headers: { "X-API-Key": TEST_API_KEY },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    assert.equal(res.status, 200, `${route}: ${text}\n${server?.output() ?? ""}`);
    return JSON.parse(text);
  }

  before(async () => {
    await admin().query(sql.typeAlias("void")`CREATE ROLE ${sql.identifier([role])} LOGIN CREATEDB CREATEROLE NOSUPERUSER PASSWORD ${sql.literalValue(password)}`);
    dataDir = mkdtempSync(path.join(tmpdir(), "qod-external-user-"));
    const grpcPort = await freePort();
    const httpPort = await freePort();
    httpBase = `http://127.0.0.1:${httpPort}`;
    const { host, port } = sharedPostgres().target;
    server = await startServerProcess(
      {
        QOD_DATA_DIR: dataDir,
        QOD_GRPC_PORT: String(grpcPort),
        QOD_HTTP_PORT: String(httpPort),
        QOD_API_KEY: TEST_API_KEY,
        QOD_EDGE: "off",
        QOD_PG_HOST: host,
        QOD_PG_PORT: String(port),
        QOD_PG_USER: role,
        QOD_PG_PASSWORD: password,
        QOD_PG_DBNAME: stateDatabase,
        QOD_BCRYPT_COST: "4",
      },
      grpcPort,
    );
  });
  after(async () => {
    await server?.kill("SIGTERM");
    await removeServerData(dataDir);
    const databases = await admin().anyFirst(sql.type(z.object({ datname: z.string() }))`SELECT datname FROM pg_database WHERE datname LIKE ${`${p}%`}`);
    for (const name of databases) await admin().query(sql.typeAlias("void")`DROP DATABASE IF EXISTS ${sql.identifier([name])} WITH (FORCE)`);
    // The roles it made are the ones it is a member of (roles.ts grants them to it).
    const made = await admin().anyFirst(sql.type(z.object({ rolname: z.string() }))`
      SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid WHERE m.member = ${role}::regrole`);
    for (const name of made) await admin().query(sql.typeAlias("void")`DROP ROLE IF EXISTS ${sql.identifier([name])}`);
    await admin().query(sql.typeAlias("void")`DROP ROLE IF EXISTS ${sql.identifier([role])}`);
  });

  it("creates and migrates its state database, owned by that user", async () => {
    const owner = await admin().oneFirst(sql.type(z.object({ owner: z.string() }))`
      SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = ${stateDatabase}`);
    assert.equal(owner, role);
  });

  it("provisions a DuckLake database, makes a pool's role (never a superuser) and drops them again", async () => {
    const tenant = `${p}_t`;
    await call("/api/tenant/create", { name: tenant });
    const database = await call("/api/database/create", { tenant, name: "sales", kind: "ducklake", defaultSchema: "mart" });
    assert.equal(database.status, "READY", JSON.stringify(database));
    const pool = await call("/api/pool/create", { tenant, tenantDb: "sales", pool: "bi", size: 1 });
    assert.equal(pool.ready, true, JSON.stringify(pool));
    const poolRole = `qod_p_${String(pool.id).replace(/^p-/, "")}`;
    const attributes = await admin().one(sql.type(z.object({ rolsuper: z.boolean(), rolcreatedb: z.boolean(), rolcreaterole: z.boolean(), rolcanlogin: z.boolean() }))`
      SELECT rolsuper, rolcreatedb, rolcreaterole, rolcanlogin FROM pg_roles WHERE rolname = ${poolRole}`);
    assert.deepEqual(attributes, { rolsuper: false, rolcreatedb: false, rolcreaterole: false, rolcanlogin: true });
    // The pool's role reads and writes the catalog, as a DuckDB client attached through the pool does.
    const { host, port } = sharedPostgres().target;
    const client = new Client({ host, port, user: poolRole, password: String(pool.password), database: `${tenant}_sales` });
    await client.connect();
    try {
      const { rows } = await client.query<{ value: string; writable: boolean }>(
        "SELECT value, has_table_privilege('ducklake_snapshot', 'INSERT, UPDATE, DELETE') AS writable FROM ducklake_metadata WHERE key = 'data_path'",
      );
      assert.deepEqual(rows, [{ value: database.effectiveDataPath, writable: true }]);
    } finally {
      await client.end();
    }
    await call("/api/pool/delete", { tenant, pool: "bi" });
    const gone = await admin().exists(sql.type(z.object({ x: z.number() }))`SELECT 1 AS x FROM pg_roles WHERE rolname = ${poolRole}`);
    assert.equal(gone, false, "the pool's role is dropped with the pool");
    await call("/api/database/delete", { tenant, name: "sales", dropDatabase: true });
    const left = await admin().anyFirst(sql.type(z.object({ datname: z.string() }))`SELECT datname FROM pg_database WHERE datname = ${`${tenant}_sales`}`);
    assert.deepEqual(left, []);
  });
});
