// Clients through the edge: psql (libpq) and node-postgres, on the transaction and the session port,
// over plain TCP and TLS; authentication failures; the checks; cancel; a small pool under load.
import assert from "node:assert/strict";
import type { Socket } from "node:net";
import { spawn } from "node:child_process";
import type { Client } from "pg";
import { generateSelfSignedCertificate, type CertificatePair } from "../src/edge/tls";
import { scramVerifier } from "../src/scram";
import {
  asSuperuser,
  createUpstreamDatabase,
  dropUpstreamDatabase,
  edgeUrl,
  makePool,
  makeTenant,
  pgClient,
  pgConnectError,
  psql,
  PSQL,
  requireTools,
  startEdge,
  type RunningEdge,
  type UpstreamDatabase,
} from "./helpers/edge";
import { waitFor } from "./helpers/wait";
import { uniquePrefix } from "./helpers/postgres";

describe("edge sessions", () => {
  let running: RunningEdge;
  let db: UpstreamDatabase;
  let certificate: CertificatePair;
  const tenant = uniquePrefix("ses");
  const strict = uniquePrefix("sst"); // enforce_ssl, allow list
  const PASSWORD = "app-password";
  let pools: ReturnType<typeof makePool>[];
  const snapshot = () => [
    makeTenant(tenant, pools.slice(0, 4), {
      authQuery: async (user) => (user === "analyst" ? scramVerifier("analyst-pw") : undefined),
    }),
    makeTenant(strict, pools.slice(4), { enforceSsl: true, allowList: ["127.0.0.0/8"] }),
  ];

  before(async function () {
    requireTools();
    db = await createUpstreamDatabase();
    certificate = await generateSelfSignedCertificate({ hosts: ["localhost", "127.0.0.1"] });
    running = await startEdge({ tls: certificate });
    pools = [
      makePool(tenant, "app", PASSWORD, db),
      makePool(tenant, "tiny", PASSWORD, db, { poolSize: 2 }),
      makePool(tenant, "capped", PASSWORD, db, { maxClients: 2 }),
      makePool(tenant, "intl", "pässwörd ﬁ", db),
      makePool(strict, "app", PASSWORD, db),
    ];
    await running.edge.apply(snapshot());
  });
  after(async () => {
    await running?.edge.close();
    if (db) await dropUpstreamDatabase(db);
  });

  const tx = () => running.transactionPort;
  const se = () => running.sessionPort;

  describe("logging in", () => {
    it("serves psql on the transaction port, as the pool's upstream user on its database", async () => {
      const r = await psql(edgeUrl(tx(), `app.${tenant}`, db.database), PASSWORD, "select current_user || ' ' || current_database()");
      assert.equal(r.stderr, "");
      assert.equal(r.stdout, `${db.role} ${db.database}`);
    });

    it("serves psql on the session port", async () => {
      const r = await psql(edgeUrl(se(), `app.${tenant}`, db.database), PASSWORD, "select 40 + 2");
      assert.equal(r.stdout, "42", r.stderr);
    });

    it("serves node-postgres (its own SCRAM client) on both ports", async () => {
      for (const port of [tx(), se()]) {
        const client = await pgClient(port, `app.${tenant}`, PASSWORD, db.database);
        assert.deepEqual((await client.query("select 1 as one")).rows, [{ one: 1 }]);
        await client.end();
      }
    });

    it("lets a client that says goodbye (Terminate) go without a FATAL, even before its socket closes", async () => {
      for (const port of [tx(), se()]) {
        const client = await pgClient(port, `app.${tenant}`, PASSWORD, db.database);
        await client.query("select 1");
        // Terminate, with the socket left open: PgBouncer's close now comes before the client's,
        // the order a busy machine gives node-postgres's end() now and then.
        const stream = (client as unknown as { connection: { stream: Socket } }).connection.stream;
        const received: Buffer[] = [];
        stream.on("data", (chunk: Buffer) => received.push(chunk));
        client.on("error", () => {}); // node-postgres did not send the Terminate itself: it calls the close unexpected
        const closed = new Promise((resolve) => stream.once("close", resolve));
        stream.write(Buffer.from([0x58, 0, 0, 0, 4]));
        await closed;
        assert.equal(Buffer.concat(received).toString("latin1"), "", "nothing after the goodbye: no FATAL 08006");
      }
    });

    it("routes by options=reference=<tenant> with the user name taken verbatim", async () => {
      const r = await psql(edgeUrl(tx(), "app", db.database, `sslmode=disable&options=${encodeURIComponent(`reference=${tenant}`)}`), PASSWORD, "select 1");
      assert.equal(r.stdout, "1", r.stderr);
    });

    it("prepares non-ASCII passwords as libpq does (SASLprep)", async () => {
      const r = await psql(edgeUrl(tx(), `intl.${tenant}`, db.database), "pässwörd ﬁ", "select 1");
      assert.equal(r.stdout, "1", r.stderr);
    });

    it("keeps one server for a whole session on the session port, so named prepared statements work", async () => {
      const client = await pgClient(se(), `app.${tenant}`, PASSWORD, db.database);
      const pid = async () => (await client.query("select pg_backend_pid() as pid")).rows[0].pid as number;
      const first = await pid();
      for (let i = 0; i < 3; i++) assert.equal(await pid(), first);
      const named = await client.query({ name: "edge_named", text: "select $1::int + 1 as n", values: [41] });
      assert.equal(named.rows[0].n, 42);
      assert.equal((await client.query({ name: "edge_named", text: "select $1::int + 1 as n", values: [1] })).rows[0].n, 2);
      await client.end();
    });
  });

  describe("TLS", () => {
    it("answers SSLRequest and serves psql with sslmode=require", async () => {
      const r = await psql(edgeUrl(tx(), `app.${tenant}`, db.database, "sslmode=require"), PASSWORD, "select ssl from pg_stat_ssl where pid = pg_backend_pid()");
      assert.equal(r.stderr, "");
      assert.equal(r.stdout, "f", "TLS ends at the edge; the engine's upstream here is plain");
    });

    it("serves node-postgres that verifies the certificate (verify-full against it)", async () => {
      const client = await pgClient(tx(), `app.${tenant}`, PASSWORD, db.database, { ssl: { ca: certificate.cert, servername: "localhost" } });
      assert.equal((await client.query("select 1 as one")).rows[0].one, 1);
      await client.end();
    });

    it("refuses a tenant with enforce_ssl over plain TCP, and serves it over TLS", async () => {
      const plain = await psql(edgeUrl(tx(), `app.${strict}`, db.database), PASSWORD, "select 1");
      assert.match(plain.stderr, /FATAL: {2}SSL connection is required/);
      const secure = await psql(edgeUrl(tx(), `app.${strict}`, db.database, "sslmode=require"), PASSWORD, "select 1");
      assert.equal(secure.stdout, "1", secure.stderr);
    });
  });

  describe("authentication failures", () => {
    const failure = async (user: string, password: string) => {
      const r = await psql(edgeUrl(tx(), user, db.database), password, "select 1");
      return r.stderr.replace(/^.*?failed: /, "");
    };

    it("says the same for a wrong password, an unknown tenant, an unknown user and a bad tenant name", async () => {
      const cases = [
        [`app.${tenant}`, "wrong-password"],
        ["app.no_such_tenant", PASSWORD],
        [`nobody.${tenant}`, PASSWORD],
        [`app.${tenant}x`, PASSWORD],
      ] as const;
      for (const [user, password] of cases) {
        assert.equal(await failure(user, password), `FATAL:  password authentication failed for user "${user}"`);
      }
      const viaPg = await pgConnectError(tx(), "app.no_such_tenant", PASSWORD, db.database);
      assert.equal(viaPg?.code, "28P01");
    });

    it("takes about as long for an unknown tenant as for a wrong password", async () => {
      const timed = async (user: string, password: string) => {
        const started = process.hrtime.bigint();
        await pgConnectError(tx(), user, password, db.database);
        return Number(process.hrtime.bigint() - started) / 1e6;
      };
      const wrong: number[] = [];
      const unknown: number[] = [];
      for (let i = 0; i < 7; i++) {
        wrong.push(await timed(`app.${tenant}`, "wrong-password"));
        unknown.push(await timed("app.no_such_tenant", PASSWORD));
      }
      const median = (v: number[]) => v.sort((a, b) => a - b)[3];
      const ratio = median(unknown) / median(wrong);
      assert.ok(ratio > 0.33 && ratio < 3, `unknown tenant ${median(unknown)} ms vs wrong password ${median(wrong)} ms`);
    });

    it("says which form the user name needs when it names no tenant", async () => {
      assert.match(await failure("app", PASSWORD), /FATAL: {2}no tenant in user name "app": connect as "<user>\.<tenant>"/);
    });

    it("tells a role admitted only through auth_query to register, after checking its password", async () => {
      assert.match(await failure(`analyst.${tenant}`, "analyst-pw"), /FATAL: {2}role "analyst" must be registered as a user of tenant/);
      assert.equal(await failure(`analyst.${tenant}`, "wrong"), `FATAL:  password authentication failed for user "analyst.${tenant}"`);
    });

    it("refuses replication connections", async () => {
      const r = await psql(edgeUrl(tx(), `app.${tenant}`, db.database, "sslmode=disable&replication=database"), PASSWORD, "IDENTIFY_SYSTEM");
      assert.match(r.stderr, /replication connections are not supported by the pooler/);
    });
  });

  describe("checks after authentication", () => {
    it("refuses another database than the pool's (3D000)", async () => {
      const err = await pgConnectError(tx(), `app.${tenant}`, PASSWORD, "postgres");
      assert.equal(err?.code, "3D000");
      assert.equal(err?.message, 'database "postgres" does not exist');
    });

    it("refuses a client outside the allow list", async () => {
      await running.edge.apply([snapshot()[0], makeTenant(strict, pools.slice(4), { allowList: ["10.0.0.0/8"] })]);
      try {
        const err = await pgConnectError(tx(), `app.${strict}`, PASSWORD, db.database);
        assert.equal(err?.code, "28000");
        assert.match(err?.message ?? "", /address "127\.0\.0\.1" is not allowed to connect to tenant/);
      } finally {
        await running.edge.apply(snapshot());
      }
    });

    it("refuses the client past max_clients (53300), counting both ports", async () => {
      const a = await pgClient(tx(), `capped.${tenant}`, PASSWORD, db.database);
      const b = await pgClient(se(), `capped.${tenant}`, PASSWORD, db.database);
      const err = await pgConnectError(tx(), `capped.${tenant}`, PASSWORD, db.database);
      assert.equal(err?.code, "53300");
      await a.end();
      await waitFor("the closed session to be counted out", async () => (await running.edge.stats()).get(pools[2].id)?.clients === 1);
      const c = await pgClient(tx(), `capped.${tenant}`, PASSWORD, db.database);
      await Promise.all([b.end(), c.end()]);
    });
  });

  describe("cancel", () => {
    const sleeping = async () =>
      asSuperuser("postgres", async (c) => (await c.query("select count(*)::int as n from pg_stat_activity where query like 'select pg_sleep(30)%'")).rows[0].n as number);

    /** A CancelRequest with the session's BackendKeyData on a new connection, as libpq and node-postgres send it. */
    const sendCancel = async (port: number, client: Client) => {
      const { processID, secretKey } = client as unknown as { processID: number; secretKey: number };
      const packet = Buffer.alloc(16);
      packet.writeUInt32BE(16, 0);
      packet.writeUInt32BE(80877102, 4);
      packet.writeUInt32BE(processID >>> 0, 8);
      packet.writeUInt32BE(secretKey >>> 0, 12);
      const { connect } = await import("node:net");
      const socket = connect({ host: "127.0.0.1", port }, () => socket.end(packet));
      await new Promise((resolve) => socket.on("close", resolve));
    };

    it("cancels a pg_sleep(30) from node-postgres; the engine keeps running", async () => {
      const pidBefore = running.edge.health().engines[0]?.pid;
      const client = await pgClient(tx(), `app.${tenant}`, PASSWORD, db.database);
      const query = client.query("select pg_sleep(30)");
      const failed = query.then(
        () => undefined,
        (err: Error & { code?: string }) => err,
      );
      await waitFor("the query to run", async () => (await sleeping()) > 0);
      const started = Date.now();
      await sendCancel(tx(), client);
      const err = await failed;
      assert.equal(err?.code, "57014", "query_canceled");
      assert.ok(Date.now() - started < 10_000);
      assert.deepEqual((await client.query("select 1 as one")).rows, [{ one: 1 }]);
      await client.end();
      assert.equal(running.edge.health().engines[0]?.pid, pidBefore);
      assert.ok(running.edge.health().ok);
    });

    it("cancels psql's query on Ctrl-C (libpq's cancel request) on the session port", async () => {
      const child = spawn(PSQL, ["-X", "-c", "select pg_sleep(30)", edgeUrl(se(), `app.${tenant}`, db.database)], {
        env: { PATH: "/usr/bin:/bin", PGPASSWORD: PASSWORD },
      });
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
      await waitFor("the query to run", async () => (await sleeping()) > 0);
      child.kill("SIGINT");
      const code = await exited;
      assert.match(stderr, /canceling statement due to user request/);
      assert.notEqual(code, 0);
      await waitFor("the backend to be idle", async () => (await sleeping()) === 0);
    });

    it("drops a cancel request with an unknown key without an answer", async () => {
      const { connect } = await import("node:net");
      const socket = connect({ host: "127.0.0.1", port: tx() });
      const packet = Buffer.alloc(16);
      packet.writeUInt32BE(16, 0);
      packet.writeUInt32BE(80877102, 4);
      packet.writeUInt32BE(12345, 8);
      packet.writeUInt32BE(67890, 12);
      let received = 0;
      socket.on("data", (d: Buffer) => (received += d.length));
      socket.write(packet);
      await new Promise((resolve) => socket.on("close", resolve));
      assert.equal(received, 0);
    });
  });

  describe("a pool of 2 under 20 clients (transaction mode)", () => {
    it("answers every query of every client, with at most 2 server connections", async () => {
      const clients = await Promise.all(Array.from({ length: 20 }, () => pgClient(tx(), `tiny.${tenant}`, PASSWORD, db.database)));
      const answers = await Promise.all(
        clients.map(async (client, i) => {
          const sums: number[] = [];
          for (let q = 0; q < 5; q++) sums.push((await client.query("select $1::int + $2::int as s", [i, q])).rows[0].s as number);
          return sums;
        }),
      );
      answers.forEach((sums, i) => assert.deepEqual(sums, [i, i + 1, i + 2, i + 3, i + 4]));
      const stats = (await running.edge.stats()).get(pools[1].id)!;
      assert.equal(stats.clients, 20);
      assert.ok(stats.serversActive + stats.serversIdle <= 2, JSON.stringify(stats));
      assert.ok(stats.transactions >= 100, JSON.stringify(stats));
      await Promise.all(clients.map((c) => c.end()));
      await waitFor("sessions to close", async () => (await running.edge.stats()).get(pools[1].id)?.clients === 0);
    });
  });
});
