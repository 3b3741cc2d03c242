// Crash safety end to end: the real server as a child process, killed with SIGKILL while 20
// creates are provisioning, then restarted; its reconciler must leave state and server agreeing.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { DatabasePool } from "slonik";
import { z } from "zod";
import { DatabaseStatus } from "../gen/qod/v1/database";
import { freePort } from "../src/db/embedded";
import { createPool, pgUrl } from "../src/db/pool";
import { sql } from "../src/db/sql";
import { testEnv } from "./helpers/app";
import { clientsFor, type Clients } from "./helpers/clients";
import { assertCatalog, dropDatabasesWithPrefix, pgDatabases } from "./helpers/databases";
import { createTestDatabase, dropDatabase, quietLogger, sharedPostgres, uniquePrefix } from "./helpers/postgres";
import { waitFor } from "./helpers/wait";

const REPO = path.join(__dirname, "..");
const Row = z.object({ name: z.string(), status: z.string(), started: z.boolean() });

describe("DatabaseService crash safety (SIGKILL mid-provisioning, restart, reconcile)", function () {
  this.timeout(180_000);
  const tenant = uniquePrefix("k");
  const names = Array.from({ length: 20 }, (_, i) => `db${i}`);
  let stateDatabase: string;
  let dataDir: string;
  let env: NodeJS.ProcessEnv;
  let state: DatabasePool;
  let child: ChildProcess | undefined;
  let clients: Clients | undefined;
  let output = "";

  const rows = () =>
    state.any(sql.type(Row)`
      SELECT name, status, provisioning_started_at IS NOT NULL AS started FROM databases WHERE tenant = ${tenant} ORDER BY name`);

  /** Starts `node --import tsx src/main.ts` and waits until it answers calls. */
  async function startServer(): Promise<Clients> {
    child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], { cwd: REPO, env, stdio: ["ignore", "pipe", "pipe"] });
    child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
    const c = clientsFor(`127.0.0.1:${env.QOD_GRPC_PORT}`);
    const started = child;
    return waitFor(
      () => `the server to start\n${output}`,
      async () => {
        if (started.exitCode !== null) throw new Error(`the server exited\n${output}`);
        return c.tenants.listTenants({ pageSize: 1 }, { apiKey: env.QOD_API_KEY, deadlineMs: 1_000 }).then(() => c, () => undefined);
      },
      { timeoutMs: 30_000, everyMs: 100 },
    );
  }

  async function killServer(): Promise<void> {
    clients?.close();
    clients = undefined;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = once(child, "exit");
      child.kill("SIGKILL");
      await exited;
    }
    child = undefined;
  }

  before(async () => {
    stateDatabase = await createTestDatabase();
    dataDir = mkdtempSync(path.join(tmpdir(), "qod-crash-"));
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("QOD_")));
    env = {
      ...inherited,
      ...testEnv(stateDatabase, dataDir, {
        QOD_GRPC_PORT: String(await freePort()),
        QOD_HTTP_PORT: String(await freePort()),
        QOD_RECONCILE_INTERVAL_SEC: "1",
        QOD_LOG_LEVEL: "warn",
      }),
    };
    state = await createPool(pgUrl(sharedPostgres().target, stateDatabase), quietLogger, { maximumPoolSize: 2 });
  });

  after(async function () {
    if (this.currentTest?.state === "failed") process.stdout.write(output);
    await killServer();
    await state?.end();
    await dropDatabasesWithPrefix(sharedPostgres(), tenant);
    if (stateDatabase) await dropDatabase(sharedPostgres(), stateDatabase);
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it("leaves no READY row without its database and catalog, and no database of ours without a row", async () => {
    clients = await startServer();
    const apiKey = env.QOD_API_KEY;
    await clients.tenants.createTenant({ name: tenant }, { apiKey });

    // 20 creates at once; SIGKILL mid-way: once a few are READY and another is between CREATE
    // DATABASE and READY.
    const c = clients;
    const calls = names.map((name) => c.databases.createDatabase({ tenant, name, defaultSchema: "mart" }, { apiKey }));
    const settled = Promise.allSettled(calls);
    const midWay = (now: readonly z.infer<typeof Row>[]) =>
      now.filter((r) => r.status === "READY").length >= 3 && now.some((r) => r.status === "PROVISIONING" && r.started);
    await waitFor(() => `creates in the middle of provisioning\n${output}`, async () => midWay(await rows()), { timeoutMs: 60_000, everyMs: 5 });
    await killServer();
    const answered = (await settled).flatMap((r) => (r.status === "fulfilled" && r.value ? [r.value.name] : []));

    const atKill = await rows();
    const serverAtKill = await pgDatabases(sharedPostgres().admin, `${tenant}_`);
    output += `\n[test] at the kill: ${answered.length} answered; rows ${JSON.stringify(countBy(atKill.map((r) => r.status)))}; ${serverAtKill.length} databases on the server\n`;
    assert.ok(atKill.some((r) => r.status === "PROVISIONING"), "the kill left work to reconcile");

    // Restart: the reconciler runs at start and every second; rows settle once past the grace period.
    clients = await startServer();
    const after = await waitFor(
      () => `the reconciler to settle every row\n${output}`,
      async () => {
        const now = await rows();
        return now.every((r) => r.status === "READY" || r.status === "FAILED") && now;
      },
      { timeoutMs: 60_000, everyMs: 100 },
    );

    const onServer = await pgDatabases(sharedPostgres().admin, `${tenant}_`);
    const ready = after.filter((r) => r.status === "READY").map((r) => r.name);
    for (const name of ready) {
      assert.ok(onServer.includes(name), `READY ${name} has its database`);
      await assertCatalog(sharedPostgres().target, name, { schemas: ["main", "mart"], dataPath: `${path.resolve(dataDir, "lake")}/${tenant}/${name.slice(tenant.length + 1)}/` });
    }
    assert.deepEqual(onServer, [...ready].sort(), "every database of ours has a READY row; FAILED rows have none");
    for (const name of answered) assert.ok(ready.includes(name), `${name} was answered READY before the kill and stays READY`);

    // The service works on: creating what failed succeeds, what exists stays `exists`.
    const retried = await Promise.allSettled(names.map((name) => clients!.databases.createDatabase({ tenant, name, defaultSchema: "mart" }, { apiKey })));
    retried.forEach((r, i) => {
      const full = `${tenant}_${names[i]}`;
      if (ready.includes(full)) assert.equal(r.status, "rejected", `${full} already exists`);
      else assert.equal(r.status === "fulfilled" && r.value.status, DatabaseStatus.READY, `${full} created on retry`);
    });
    assert.equal((await pgDatabases(sharedPostgres().admin, `${tenant}_`)).length, 20);
  });
});

function countBy(values: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}
