// The engines behind the edge: one PgBouncer per upstream TLS profile (PgBouncer 1.18's server TLS
// settings are global), each in a private directory, started on demand and stopped when unneeded.
// A second Postgres with TLS on stands in for a tenant's TLS upstream.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Client } from "pg";
import { processAlive } from "../src/db/embedded";
import type { EdgePool } from "../src/edge/snapshot";
import { generateSelfSignedCertificate, type CertificatePair } from "../src/edge/tls";
import {
  asSuperuser,
  createUpstreamDatabase,
  PGBOUNCER,
  dropUpstreamDatabase,
  makePool,
  makeTenant,
  pgClient,
  pgConnectError,
  requireTools,
  startEdge,
  type RunningEdge,
  type UpstreamDatabase,
} from "./helpers/edge";
import { waitFor } from "./helpers/wait";
import { startPostgres, uniquePrefix, type TestPostgres } from "./helpers/postgres";

const PASSWORD = "engines-password";

/** The ini an engine runs with, read through its command line. */
function engineIni(pid: number): { path: string; text: string } {
  const iniPath = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[1];
  return { path: iniPath, text: readFileSync(iniPath, "utf8") };
}

/** Turns TLS on in a test Postgres with this certificate. */
async function enableTls(server: TestPostgres, pair: CertificatePair): Promise<void> {
  const { target } = server;
  const client = new Client({ host: target.host, port: target.port, user: target.user, password: target.password, database: "postgres" });
  await client.connect();
  try {
    const dataDir = (await client.query<{ data_directory: string }>("SHOW data_directory")).rows[0].data_directory;
    const owner = statSync(dataDir);
    for (const [name, text] of [["server.crt", pair.cert], ["server.key", pair.key]] as const) {
      const file = path.join(dataDir, name);
      writeFileSync(file, text, { mode: 0o600 });
      chownSync(file, owner.uid, owner.gid); // Postgres insists on owning its key
    }
    await client.query("ALTER SYSTEM SET ssl = on");
    await client.query("SELECT pg_reload_conf()");
  } finally {
    await client.end();
  }
}

describe("edge engines", () => {
  let running: RunningEdge;
  let db: UpstreamDatabase;
  let tlsServer: TestPostgres;
  let serverCert: CertificatePair;
  let otherCert: CertificatePair;
  const tenant = uniquePrefix("eng");
  let pools: Record<"plain" | "require" | "verified" | "wrongCa", EdgePool>;
  const tlsPool = (user: string, tls: EdgePool["upstream"]["tls"]): EdgePool =>
    makePool(tenant, user, PASSWORD, db, {
      database: "postgres",
      upstream: { host: "127.0.0.1", port: tlsServer.target.port, database: "postgres", user: tlsServer.target.user, password: tlsServer.target.password!, tls },
    });
  const connect = (user: string, database = "postgres") => pgClient(running.transactionPort, `${user}.${tenant}`, PASSWORD, database);
  const overTls = async (client: Client) => (await client.query("select ssl from pg_stat_ssl where pid = pg_backend_pid()")).rows[0].ssl as boolean;

  before(async function () {
    requireTools();
    this.timeout(120_000);
    [db, tlsServer, serverCert, otherCert] = await Promise.all([
      createUpstreamDatabase(),
      startPostgres(),
      generateSelfSignedCertificate({ hosts: ["127.0.0.1", "localhost"] }),
      generateSelfSignedCertificate({ hosts: ["127.0.0.1"] }),
    ]);
    await enableTls(tlsServer, serverCert);
    running = await startEdge({ upstreamTimeoutMs: 4_000 });
    pools = {
      plain: makePool(tenant, "plain", PASSWORD, db),
      require: tlsPool("req", { mode: "require" }),
      verified: tlsPool("verified", { mode: "verify-full", ca: serverCert.cert }),
      wrongCa: tlsPool("wrongca", { mode: "verify-full", ca: otherCert.cert }),
    };
    await running.edge.apply([makeTenant(tenant, Object.values(pools))]);
  });
  after(async () => {
    await running?.edge.close();
    await tlsServer?.stop();
    if (db) await dropUpstreamDatabase(db);
  });

  it("runs one engine per TLS profile, each with its own server_tls settings", () => {
    const engines = running.edge.health().engines;
    assert.deepEqual(engines.map((e) => e.profile.replace(/-[0-9a-f]{16}$/, "")).sort(), ["disable", "require", "verify-full", "verify-full"]);
    for (const engine of engines) {
      assert.ok(engine.running && engine.pid);
      const ini = engineIni(engine.pid).text;
      const mode = engine.profile.startsWith("verify-full") ? "verify-full" : engine.profile;
      assert.match(ini, new RegExp(`^server_tls_sslmode = ${mode}$`, "m"));
      assert.equal(engine.routes, 2, "a transaction and a session route for its one pool");
    }
    const verifyFull = engines.filter((e) => e.profile.startsWith("verify-full")).map((e) => engineIni(e.pid!).text);
    const caFiles = verifyFull.map((text) => readFileSync(/^server_tls_ca_file = (.*)$/m.exec(text)![1], "utf8"));
    assert.deepEqual(caFiles.sort(), [serverCert.cert, otherCert.cert].sort());
  });

  it("keeps each engine private: a 0700 directory, 0600 files, no TCP listener, not root", () => {
    for (const engine of running.edge.health().engines) {
      const ini = engineIni(engine.pid!);
      const dir = path.dirname(ini.path);
      assert.equal(statSync(dir).mode & 0o777, 0o700);
      for (const file of ["pgbouncer.ini", "auth.txt"]) assert.equal(statSync(path.join(dir, file)).mode & 0o777, 0o600);
      assert.match(ini.text, /^listen_addr =$/m);
      assert.match(ini.text, /^auth_type = trust$/m);
      const uid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${engine.pid}/status`, "utf8"))![1]);
      if (process.getuid?.() === 0) assert.equal(uid, Number(execFileSync("id", ["-u", "nobody"], { encoding: "utf8" })));
      if (existsSync("/usr/bin/ss") || existsSync("/bin/ss")) {
        assert.doesNotMatch(execFileSync("ss", ["-ltnp"], { encoding: "utf8" }), new RegExp(`pid=${engine.pid},`), "listens on no TCP port");
      }
    }
  });

  it("reaches a TLS upstream with require (encrypted, not verified)", async () => {
    const client = await connect("req");
    assert.equal(await overTls(client), true);
    await client.end();
  });

  it("reaches a TLS upstream with verify-full against the pool's CA", async () => {
    const client = await connect("verified");
    assert.equal(await overTls(client), true);
    await client.end();
  });

  it("fails the login with verify-full against a wrong CA rather than passing", async () => {
    const err = await pgConnectError(running.transactionPort, `wrongca.${tenant}`, PASSWORD, "postgres");
    assert.ok(err, "no session through an upstream whose certificate does not verify");
    assert.notEqual(err.code, "28P01", "the client's own login was fine");
    const plain = await connect("plain", db.database);
    assert.equal(await overTls(plain), false);
    await plain.end();
  });

  it("forwards a cancel to the engine that issued the key", async () => {
    const client = await connect("req");
    const query = client.query("select pg_sleep(30)").then(
      () => undefined,
      (err: Error & { code?: string }) => err,
    );
    await waitFor("the sleep to start", async () => {
        const c = new Client({ ...tlsServer.target, database: "postgres" });
        await c.connect();
        const n = (await c.query("select count(*)::int as n from pg_stat_activity where query = 'select pg_sleep(30)'")).rows[0].n as number;
        await c.end();
        return n > 0;
      });
    const { processID, secretKey } = client as unknown as { processID: number; secretKey: number };
    const packet = Buffer.alloc(16);
    packet.writeUInt32BE(16, 0);
    packet.writeUInt32BE(80877102, 4);
    packet.writeUInt32BE(processID >>> 0, 8);
    packet.writeUInt32BE(secretKey >>> 0, 12);
    const { connect: tcp } = await import("node:net");
    const socket = tcp({ host: "127.0.0.1", port: running.transactionPort }, () => socket.end(packet));
    assert.equal((await query)?.code, "57014");
    await client.end();
  });

  it("passes quotes, spaces, ; and # in an upstream password through PgBouncer's ini intact", async () => {
    const role = `${uniquePrefix("eng")}_quoted`;
    const password = `it's a "p;a#s s" \\ word`;
    await asSuperuser("postgres", (c) => c.query(`CREATE ROLE ${c.escapeIdentifier(role)} LOGIN PASSWORD ${c.escapeLiteral(password)}`)); // PUBLIC may CONNECT
    try {
      const quoted = makePool(tenant, "quoted", PASSWORD, db, { upstream: { ...pools.plain.upstream, user: role, password } });
      await running.edge.apply([makeTenant(tenant, [...Object.values(pools), quoted])]);
      const client = await connect("quoted", db.database);
      assert.equal((await client.query("select current_user as u")).rows[0].u, role);
      await client.end();
    } finally {
      await running.edge.apply([makeTenant(tenant, Object.values(pools))]);
      await asSuperuser("postgres", async (c) => {
        await c.query("select pg_terminate_backend(pid) from pg_stat_activity where usename = $1", [role]);
        await c.query(`DROP ROLE IF EXISTS ${c.escapeIdentifier(role)}`);
      });
    }
  });

  it("refuses a pool whose upstream settings PgBouncer cannot take, with a clear FATAL; the others run on", async () => {
    const broken = makePool(tenant, "broken", PASSWORD, db, { upstream: { ...pools.plain.upstream, password: "line\nbreak" } });
    await running.edge.apply([makeTenant(tenant, [...Object.values(pools), broken])]);
    try {
      const err = await pgConnectError(running.transactionPort, `broken.${tenant}`, PASSWORD, db.database);
      assert.equal(err?.code, "08006");
      assert.equal(err?.message, `pool "broken" of tenant "${tenant}" has an upstream configuration the pooler cannot use`);
      const plain = await connect("plain", db.database);
      await plain.end();
    } finally {
      await running.edge.apply([makeTenant(tenant, Object.values(pools))]);
    }
  });

  it("stops the engines an edge left behind when it was killed, when the next edge starts", async function () {
    this.timeout(60_000);
    const runDir = mkdtempSync(path.join(tmpdir(), "qod-edge-test-run-"));
    chmodSync(runDir, 0o711); // the engines' user passes through
    try {
      const child = spawn(process.execPath, ["--import", "tsx", path.join(__dirname, "fixtures", "edge-process.ts"), JSON.stringify({ runDir, pgbouncerBinary: PGBOUNCER, pool: pools.plain })], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      let output = "";
      child.stdout.on("data", (d: Buffer) => (output += d.toString()));
      await waitFor("the other edge to start", () => /ready \d+/.test(output), { timeoutMs: 30_000 });
      const orphan = Number(/ready (\d+)/.exec(output)![1]);
      const exited = new Promise((resolve) => child.on("exit", resolve));
      child.kill("SIGKILL");
      await exited;
      assert.ok(processAlive(orphan), "SIGKILL leaves the engine running");
      const next = await startEdge({ runDir });
      try {
        await waitFor("the orphaned engine to be stopped", () => !processAlive(orphan));
        const leftovers = readdirSync(runDir).filter((name) => name.startsWith("qod-edge-"));
        assert.equal(leftovers.length, 1, "only the new edge's directory remains");
        assert.ok(existsSync(path.join(runDir, leftovers[0], "owner.pid")));
      } finally {
        await next.edge.close();
      }
    } finally {
      rmSync(runDir, { recursive: true, force: true });
    }
  });

  it("stops an engine when no route needs its profile any more", async () => {
    const verifyFull = running.edge.health().engines.filter((e) => e.profile.startsWith("verify-full"));
    assert.equal(verifyFull.length, 2);
    await running.edge.apply([makeTenant(tenant, [pools.plain, pools.require])]);
    assert.deepEqual(running.edge.health().engines.map((e) => e.profile).sort(), ["disable", "require"]);
    for (const engine of verifyFull) await waitFor("the engine to exit", () => !processAlive(engine.pid!));
    await running.edge.apply([makeTenant(tenant, Object.values(pools))]);
    assert.equal(running.edge.health().engines.length, 4, "started again on demand");
    const client = await connect("verified");
    await client.end();
  });
});
