// The data plane driven by the control plane (SPEC §10): the service with its edge and PgBouncer,
// real clients (psql, node-postgres) through both ports, and every state change acting on live
// sessions, as an operator would use them. The edge's own protocol work is tested in edge-*.test.ts.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { status } from "@grpc/grpc-js";
import { Client } from "pg";
import { asSuperuser, edgeUrl, pgClient, pgConnectError, psql, PSQL, requireTools } from "./helpers/edge";
import { startTestApp, testCertificate, type TestApp } from "./helpers/app";
import { expectError } from "./helpers/clients";
import { dropDatabasesWithPrefix } from "./helpers/databases";
import { sharedPostgres, uniquePrefix } from "./helpers/postgres";
import { rest } from "./helpers/rest";
import { waitFor } from "./helpers/wait";

/** What a client that was connected sees when the pooler ends its session. */
function ending(client: Client): Promise<Error & { code?: string }> {
  return new Promise((resolve) => {
    client.on("error", (err: Error & { code?: string }) => resolve(err));
    client.on("end", () => resolve(new Error("ended")));
  });
}

describe("the data plane, driven by the control plane", function () {
  this.timeout(120_000);
  let app: TestApp;
  const p = uniquePrefix("dp");
  const role = `${p}_app`;
  const rolePassword = `pw-${randomBytes(8).toString("hex")}`;
  const tx = () => app.edge!.transactionPort;
  const session = () => app.edge!.sessionPort;

  /** A Supavisor tenant on the run's Postgres, its one user `role` (require_user true). */
  async function supavisorTenant(id: string, extra: Record<string, unknown> = {}) {
    const { target } = sharedPostgres();
    const res = await rest(app, "PUT", `/api/tenants/${id}`, {
      body: {
        tenant: {
          db_host: target.host,
          db_port: target.port,
          db_database: "postgres",
          require_user: true,
          users: [{ db_user: role, db_password: rolePassword, mode_type: "transaction", pool_size: 2 }],
          ...extra,
        },
      },
    });
    assert.equal(res.status, 200, res.text);
  }
  /** Waits until this replica's data plane serves the tenant's user. */
  const served = (id: string, port = tx()) =>
    waitFor(`${id} to be served`, async () => (await pgConnectError(port, `${role}.${id}`, rolePassword, "postgres")) === undefined, { timeoutMs: 5_000 });

  before(async () => {
    requireTools();
    app = await startTestApp({ edge: true });
    await asSuperuser("postgres", (c) => c.query(`CREATE ROLE ${c.escapeIdentifier(role)} LOGIN PASSWORD ${c.escapeLiteral(rolePassword)}`));
  });
  after(async () => {
    await app?.stop();
    await asSuperuser("postgres", (c) => c.query(`DROP ROLE IF EXISTS ${c.escapeIdentifier(role)}`));
    await dropDatabasesWithPrefix(sharedPostgres(), p);
  });

  it("serves a Supavisor tenant's user through both ports, to psql and node-postgres, with SCRAM and with TLS", async () => {
    const id = `${p}_sv`;
    await supavisorTenant(id);
    await served(id);
    for (const port of [tx(), session()]) {
      const viaPsql = await psql(edgeUrl(port, `${role}.${id}`, "postgres"), rolePassword, "select current_user");
      assert.deepEqual([viaPsql.code, viaPsql.stdout], [0, role], viaPsql.stderr);
      const client = await pgClient(port, `${role}.${id}`, rolePassword, "postgres");
      assert.equal((await client.query("select current_user as u")).rows[0].u, role);
      await client.end();
    }
    const tls = await psql(edgeUrl(tx(), `${role}.${id}`, "postgres", "sslmode=require"), rolePassword, "select 1");
    assert.equal(tls.code, 0, tls.stderr);
    const verified = await pgClient(session(), `${role}.${id}`, rolePassword, "postgres", { ssl: { ca: (await testCertificate()).cert, servername: "localhost" } });
    assert.equal((await verified.query("select 2 as two")).rows[0].two, 2);
    await verified.end();
  });

  it("answers a wrong password, an unknown user and an unknown tenant with the same FATAL", async () => {
    const id = `${p}_sv`;
    const failures = await Promise.all([
      pgConnectError(tx(), `${role}.${id}`, "wrong-password", "postgres"),
      pgConnectError(tx(), `nobody.${id}`, rolePassword, "postgres"),
      pgConnectError(tx(), `${role}.${p}_nobody`, rolePassword, "postgres"),
    ]);
    const users = [`${role}.${id}`, `nobody.${id}`, `${role}.${p}_nobody`];
    failures.forEach((err, i) => {
      assert.equal(err?.code, "28P01");
      assert.equal(err?.message, `password authentication failed for user "${users[i]}"`);
    });
  });

  it("serves a QOD pool on a provisioned DuckLake database as its own role, which reaches no other tenant's database", async () => {
    const tenant = `${p}_q`;
    await app.clients.tenants.createTenant({ name: tenant });
    await app.clients.databases.createDatabase({ tenant, name: "sales", defaultSchema: "mart" });
    const pool = await app.clients.pools.createPool({ tenant, tenantDb: "sales", pool: "bi", size: 2 });
    assert.equal(pool.user, `bi.${tenant}`);
    assert.equal(pool.database, `${tenant}_sales`);
    assert.ok(pool.password && pool.ready);
    await waitFor("the pool to be served", async () => (await pgConnectError(tx(), pool.user, pool.password!, pool.database)) === undefined);
    const client = await pgClient(tx(), pool.user, pool.password, pool.database);
    const { rows } = await client.query("select current_user as u, (select count(*) from ducklake_schema)::int as schemas");
    assert.match(rows[0].u, /^qod_p_[0-9a-f]{32}$/);
    assert.equal(rows[0].schemas, 2);
    await client.query("create table own_table (x int)"); // the role may work in its database
    await client.end();
    // Straight to the server with the pool's role: another tenant's database is closed to it.
    const { target } = sharedPostgres();
    await app.clients.tenants.createTenant({ name: `${p}_q2` });
    const victim = await app.clients.databases.createDatabase({ tenant: `${p}_q2`, name: "hr" });
    const direct = new Client({ host: target.host, port: target.port, user: rows[0].u, password: pool.password, database: victim.name });
    await assert.rejects(direct.connect(), /permission denied for database/);
    const superuser = await asSuperuser(pool.database, (c) => c.query("select rolsuper, rolcreatedb, rolcreaterole from pg_roles where rolname = $1", [rows[0].u]));
    assert.deepEqual(superuser.rows[0], { rolsuper: false, rolcreatedb: false, rolcreaterole: false });

    // A second pool of the database reaches the first one's table (the database's group).
    const second = await app.clients.pools.createPool({ tenant, tenantDb: "sales", pool: "etl", password: "caller-chosen-password" });
    assert.equal(second.password, "caller-chosen-password");
    await waitFor("the second pool to be served", async () => (await pgConnectError(tx(), second.user, "caller-chosen-password", second.database)) === undefined);
    const etl = await pgClient(tx(), second.user, "caller-chosen-password", second.database);
    assert.deepEqual((await etl.query("select count(*)::int as n from own_table")).rows, [{ n: 0 }]);
    await etl.end();

    // Deleting a pool drops its role; its objects pass to the database's group.
    await app.clients.pools.deletePool({ tenant, pool: "bi" });
    const roles = await asSuperuser("postgres", (c) => c.query("select count(*)::int as n from pg_roles where rolname = $1", [rows[0].u]));
    assert.equal(roles.rows[0].n, 0);
    assert.equal((await pgConnectError(tx(), pool.user, pool.password, pool.database))?.code, "28P01");
    await app.clients.pools.deletePool({ tenant, pool: "etl" });
    await app.clients.databases.deleteDatabase({ tenant, name: "sales", dropDatabase: true });
  });

  it("refuses new sessions of a disabled tenant or pool while open ones continue", async () => {
    const id = `${p}_dis`;
    await supavisorTenant(id);
    await served(id);
    const open = await pgClient(tx(), `${role}.${id}`, rolePassword, "postgres");
    await app.clients.tenants.setTenantDisabled({ name: id, disabled: true });
    await waitFor("the tenant to be refused", async () => (await pgConnectError(tx(), `${role}.${id}`, rolePassword, "postgres"))?.message === `tenant "${id}" is disabled`);
    assert.deepEqual((await open.query("select 1 as one")).rows, [{ one: 1 }], "the open session continues");
    await app.clients.tenants.setTenantDisabled({ name: id, disabled: false });
    await served(id);
    const disabled = await app.clients.pools.setPoolDisabled({ tenant: id, pool: role, disabled: true });
    assert.deepEqual([disabled.disabled, disabled.poolDisabled], [true, true]);
    await waitFor("the pool to be refused", async () => (await pgConnectError(tx(), `${role}.${id}`, rolePassword, "postgres"))?.code === "55000");
    assert.deepEqual((await open.query("select 1 as one")).rows, [{ one: 1 }]);
    await open.end();
  });

  it("ends the open sessions of a banned tenant with the EBANNED FATAL, and of a terminated one", async () => {
    const id = `${p}_ban`;
    await supavisorTenant(id);
    await served(id);
    const open = await pgClient(session(), `${role}.${id}`, rolePassword, "postgres");
    const ended = ending(open);
    const ban = await rest(app, "PATCH", `/api/tenants/${id}`, { body: { banned: true, ban_reason: "abuse" } });
    assert.equal(ban.status, 200, ban.text);
    assert.match((await ended).message, /\(EBANNED\) tenant is banned: abuse/);
    assert.match((await pgConnectError(tx(), `${role}.${id}`, rolePassword, "postgres"))?.message ?? "", /EBANNED/);
    await rest(app, "PATCH", `/api/tenants/${id}`, { body: { banned: false } });
    await served(id);

    const again = await pgClient(tx(), `${role}.${id}`, rolePassword, "postgres");
    const terminated = ending(again);
    assert.deepEqual((await rest(app, "GET", `/api/tenants/${id}/terminate`)).json, { result: "ok" });
    assert.ok(await terminated);
    await served(id); // new sessions are welcome after a terminate
  });

  it("closes the sessions of a deleted pool and of a deleted tenant", async () => {
    const id = `${p}_del`;
    await supavisorTenant(id);
    await served(id);
    const first = await pgClient(tx(), `${role}.${id}`, rolePassword, "postgres");
    const firstEnded = ending(first);
    await app.clients.pools.deletePool({ tenant: id, pool: role });
    assert.ok(await firstEnded);
    assert.equal((await pgConnectError(tx(), `${role}.${id}`, rolePassword, "postgres"))?.code, "28P01");

    await supavisorTenant(id); // the user again, then the whole tenant
    await served(id);
    const open = await pgClient(tx(), `${role}.${id}`, rolePassword, "postgres");
    const ended = ending(open);
    assert.equal((await rest(app, "DELETE", `/api/tenants/${id}`)).status, 200);
    assert.ok(await ended);
    assert.equal((await pgConnectError(tx(), `${role}.${id}`, rolePassword, "postgres"))?.code, "28P01");
  });

  it("serves 20 concurrent clients in transaction mode through a pool of size 2, every query answered", async () => {
    const id = `${p}_many`;
    await supavisorTenant(id);
    await served(id);
    const clients = await Promise.all(Array.from({ length: 20 }, () => pgClient(tx(), `${role}.${id}`, rolePassword, "postgres")));
    const answers = await Promise.all(clients.map((c, i) => c.query("select $1::int as i, pg_sleep(0.05)", [i])));
    assert.deepEqual(answers.map((a) => a.rows[0].i), Array.from({ length: 20 }, (_, i) => i));
    const { pools } = await app.clients.pools.listPools({ tenant: id });
    assert.equal(pools[0]?.stats?.clients, 20);
    assert.ok((pools[0]?.stats?.serversActive ?? 0) + (pools[0]?.stats?.serversIdle ?? 0) <= 2);
    assert.ok(Number(pools[0]?.stats?.transactions) >= 20);
    await Promise.all(clients.map((c) => c.end()));
    const scaled = await app.clients.pools.scalePool({ tenant: id, pool: role, size: 5 });
    assert.equal(scaled.size, 5);
    await expectError(app.clients.pools.scalePool({ tenant: id, pool: role, size: 0 }), status.INVALID_ARGUMENT, "invalid_size");
  });

  it("cancels a pg_sleep(30) from psql (Ctrl-C) and keeps serving", async () => {
    const id = `${p}_sv`;
    const started = Date.now();
    const child = spawn(PSQL, ["-X", "-c", "select pg_sleep(30)", edgeUrl(tx(), `${role}.${id}`, "postgres")], { env: { PATH: "/usr/bin:/bin", PGPASSWORD: rolePassword } });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const sleeping = () => asSuperuser("postgres", async (c) => (await c.query("select count(*)::int as n from pg_stat_activity where query = 'select pg_sleep(30)' and state = 'active'")).rows[0].n as number);
    await waitFor("the sleep to run", async () => (await sleeping()) === 1);
    child.kill("SIGINT"); // psql sends a CancelRequest
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    assert.ok(Date.now() - started < 20_000);
    assert.notEqual(code, 0);
    assert.match(stderr, /canceling statement due to user request/);
    await served(id);
  });

  it("keeps a change made on another replica in step within a second", async () => {
    const replica = await app.replica();
    try {
      const id = `${p}_rep`;
      await supavisorTenant(id); // on the first replica
      const started = Date.now();
      await waitFor("the other replica to serve it", async () => (await pgConnectError(replica.edge!.transactionPort, `${role}.${id}`, rolePassword, "postgres")) === undefined, { timeoutMs: 5_000, everyMs: 50 });
      assert.ok(Date.now() - started < 1_500, `${Date.now() - started} ms`);
      await app.clients.tenants.setTenantDisabled({ name: id, disabled: true });
      await waitFor("the other replica to refuse it", async () => (await pgConnectError(replica.edge!.transactionPort, `${role}.${id}`, rolePassword, "postgres"))?.message === `tenant "${id}" is disabled`, { timeoutMs: 1_500, everyMs: 50 });
    } finally {
      await replica.stop();
    }
  });
});
