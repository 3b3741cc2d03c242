// Faults of the tenant's Postgres server during provisioning (issue 11, reliability suite): it
// refuses connections, it has no free connection (at the start, and between CREATE DATABASE and
// the catalog), or it dies between the two. Each time the caller gets UNAVAILABLE with a reason
// that says what happened, and once the server is usable again no database of ours is left
// without a READY row, and no row stays PROVISIONING.
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { status, type ServiceError } from "@grpc/grpc-js";
import type { DatabasePool } from "slonik";
import { z } from "zod";
import { DatabaseStatus } from "../gen/qod/v1/database";
import { createPool, pgUrl } from "../src/db/pool";
import { sql } from "../src/db/sql";
import { startTestApp, type TestApp } from "./helpers/app";
import { decodeError, expectError } from "./helpers/clients";
import { assertCatalog, pgDatabases } from "./helpers/databases";
import { quietLogger, startPostgres, uniquePrefix, type TestPostgres } from "./helpers/postgres";
import { waitFor } from "./helpers/wait";

const Row = z.object({ name: z.string(), status: z.string(), status_reason: z.string(), started: z.boolean() });

describe("provisioning when the tenant's server fails", function () {
  this.timeout(180_000);
  let app: TestApp;
  let server: TestPostgres;
  const p = uniquePrefix("pf");

  const rows = () =>
    app.pool.any(sql.type(Row)`
      SELECT name, status, status_reason, provisioning_started_at IS NOT NULL AS started FROM databases WHERE tenant = ${p} ORDER BY name`);

  /** The server's own metastore override, as a superuser gives it (optionally as another role). */
  const onServer = (role?: { user: string; password: string }) => ({
    pgHost: server.target.host,
    pgPort: String(server.target.port),
    pgUser: role?.user ?? server.target.user,
    pgPassword: role?.password ?? server.target.password ?? "",
  });

  /**
   * Waits until the reconciler has settled every row, then checks the invariants: a READY row
   * has its database and a whole catalog; every database of ours on the server has a READY row.
   */
  async function assertSettled(): Promise<void> {
    const settled = await waitFor("every row to settle", async () => {
      const now = await rows();
      return now.every((r) => r.status === "READY" || r.status === "FAILED") && now;
    }, { timeoutMs: 60_000, everyMs: 100 });
    const ready = settled.filter((r) => r.status === "READY").map((r) => r.name);
    for (const name of ready) await assertCatalog(server.target, name, { schemas: ["main"], dataPath: `${app.config.dataPath}/${p}/${name.slice(p.length + 1)}/` });
    assert.deepEqual(await pgDatabases(server.admin, `${p}_`), [...ready].sort(), "no database of ours without a READY row");
  }

  before(async () => {
    server = await startPostgres();
    app = await startTestApp({ env: { QOD_RECONCILE_INTERVAL_SEC: "1" } });
    await app.clients.tenants.createTenant({ name: p });
  });
  after(async () => {
    await app?.stop();
    await server?.stop();
  });

  it("answers a server that refuses connections UNAVAILABLE, saying so, and leaves a FAILED row and nothing else", async () => {
    const closed = createServer();
    const port = await new Promise<number>((resolve) => closed.listen(0, "127.0.0.1", () => resolve((closed.address() as { port: number }).port)));
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const err = await expectError(
      app.clients.databases.createDatabase({ tenant: p, name: "refused", metastore: { pgHost: "127.0.0.1", pgPort: String(port) } }),
      status.UNAVAILABLE,
      "unavailable",
    );
    assert.match(err.message, /refused the connection/);
    assert.deepEqual((await rows()).find((r) => r.name === `${p}_refused`), { name: `${p}_refused`, status: "FAILED", status_reason: "unavailable", started: false });
    await assertSettled();
  });

  describe("a server with no free connection", () => {
    let holder: DatabasePool | undefined;

    after(async () => {
      await holder?.end();
    });

    it("at the start: answers UNAVAILABLE saying so, and makes nothing", async () => {
      await server.admin.query(sql.typeAlias("void")`CREATE ROLE pf_full LOGIN CREATEDB PASSWORD 'pf-full-password' CONNECTION LIMIT 1`);
      // The role's one connection is taken.
      holder = await createPool(pgUrl({ ...server.target, user: "pf_full", password: "pf-full-password" }, "postgres"), quietLogger, { maximumPoolSize: 1 });
      let release!: () => void;
      const held = holder.connect(() => new Promise<void>((resolve) => (release = resolve)));
      await waitFor("the role's connection to be taken", () => release !== undefined);
      try {
        const err = await expectError(
          app.clients.databases.createDatabase({ tenant: p, name: "full", metastore: onServer({ user: "pf_full", password: "pf-full-password" }) }),
          status.UNAVAILABLE,
          "unavailable",
        );
        assert.match(err.message, /no free connections/);
      } finally {
        release();
        await held;
      }
      await assertSettled();
      assert.equal((await rows()).find((r) => r.name === `${p}_full`)?.status, "FAILED");
    });

    it("between CREATE DATABASE and the catalog: answers UNAVAILABLE, and the database is rolled back once connections free up", async () => {
      // One connection for the role: CREATE DATABASE takes it, the catalog's connection finds none.
      await server.admin.query(sql.typeAlias("void")`CREATE ROLE pf_one LOGIN CREATEDB PASSWORD 'pf-one-password' CONNECTION LIMIT 1`);
      const err = await expectError(
        app.clients.databases.createDatabase({ tenant: p, name: "half", metastore: onServer({ user: "pf_one", password: "pf-one-password" }) }),
        status.UNAVAILABLE,
        "unavailable",
      );
      assert.match(err.message, /no free connections.*settled once its server can be reached/);
      const half = (await rows()).find((r) => r.name === `${p}_half`);
      assert.deepEqual([half?.status, half?.started], ["PROVISIONING", true], "left for the reconciler");
      assert.deepEqual(await pgDatabases(server.admin, `${p}_half`), [`${p}_half`]);
      // The operator gives the role more connections; the reconciler drops what was made.
      await server.admin.query(sql.typeAlias("void")`ALTER ROLE pf_one CONNECTION LIMIT 10`);
      await assertSettled();
      assert.equal((await rows()).find((r) => r.name === `${p}_half`)?.status, "FAILED");
    });
  });

  it("when the server dies between CREATE DATABASE and the catalog: answers UNAVAILABLE, and once it is back leaves no orphan and no stuck row", async () => {
    const names = Array.from({ length: 5 }, (_, i) => `die${i}`);
    const calls = Promise.allSettled(names.map((name) => app.clients.databases.createDatabase({ tenant: p, name, metastore: onServer() })));
    // Killed as soon as the first database appears: some creates are then between CREATE DATABASE and their catalog.
    await waitFor("a database to appear", async () => (await pgDatabases(server.admin, `${p}_die`)).length > 0, { timeoutMs: 30_000, everyMs: 2 });
    await server.halt("immediate");
    const atKill = await rows();
    const answers = await calls;
    for (const answer of answers) {
      if (answer.status === "fulfilled") assert.equal(answer.value.status, DatabaseStatus.READY);
      else {
        const decoded = decodeError(answer.reason as ServiceError);
        assert.deepEqual([status[decoded.code], decoded.reason], ["UNAVAILABLE", "unavailable"], decoded.message);
      }
    }
    await server.resume();
    await assertSettled();
    const between = atKill.filter((r) => r.name.startsWith(`${p}_die`) && r.status === "PROVISIONING" && r.started).length;
    process.stdout.write(`      [at the kill: ${between} between CREATE DATABASE and the catalog; answered ${answers.filter((a) => a.status === "fulfilled").length} READY]\n`);
  });
});
