// Hole 9 of issue 11: stopping is graceful and whole. `npm start` is spawned as a user runs it
// (embedded Postgres, no configuration but ports and a key); SIGTERM to that top process while 12
// CreateDatabase calls run lets every one answer OK and READY, and leaves no process behind;
// `kill <pid of npm start>` after a restart leaves nothing running either.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { status, type ServiceError } from "@grpc/grpc-js";
import { DatabaseStatus } from "../gen/qod/v1/database";
import { freePort, stopOrphan } from "../src/db/embedded";
import { TEST_API_KEY } from "./helpers/app";
import { clientsFor, type Clients } from "./helpers/clients";
import { quietLogger } from "./helpers/postgres";
import { REPO_ROOT } from "./helpers/process";
import { waitFor } from "./helpers/wait";

/** Processes whose process group is `pgid` (the spawned npm's own group). */
function processGroup(pgid: number): { pid: number; command: string }[] {
  const members: { pid: number; command: string }[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[2]) === pgid) members.push({ pid: Number(entry), command: readFileSync(`/proc/${entry}/cmdline`, "utf8").replaceAll("\0", " ").trim() });
    } catch {
      // the process ended while it was read
    }
  }
  return members;
}

interface NpmStart {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | string>;
}

function npmStart(env: Record<string, string>): NpmStart {
  // Its own process group, so what it leaves behind can be found; no other signal than the test's.
  const child = spawn("npm", ["start"], { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env }, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | string>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal ?? -1)));
  return { child, output: () => output, exited };
}

describe("stopping (issue 11, hole 9)", function () {
  this.timeout(240_000);
  let dataDir: string;
  let env: Record<string, string>;
  let running: NpmStart | undefined;
  /** The process group of every npm start of the suite, to leave none behind whatever happens. */
  const groups: number[] = [];
  let clients: Clients | undefined;
  const tenant = "shut";
  const names = Array.from({ length: 12 }, (_, i) => `db${i}`);

  async function start(): Promise<Clients> {
    const started = npmStart(env);
    running = started;
    if (started.child.pid) groups.push(started.child.pid);
    const c = clientsFor(`127.0.0.1:${env.QOD_GRPC_PORT}`);
    await waitFor(
      () => `npm start to serve\n${started.output()}`,
      async () => {
        if (started.child.exitCode !== null) throw new Error(`npm start exited\n${started.output()}`);
        return c.tenants.listTenants({}, { apiKey: TEST_API_KEY, deadlineMs: 1_000 }).then(() => true, () => false);
      },
      { timeoutMs: 120_000, everyMs: 200 },
    );
    return c;
  }

  /** Waits for the group of the npm process to be empty; returns what was still there, if anything, after the wait. */
  async function leftovers(pgid: number): Promise<{ pid: number; command: string }[]> {
    try {
      await waitFor("the process group to empty", () => processGroup(pgid).length === 0, { timeoutMs: 30_000, everyMs: 100 });
      return [];
    } catch {
      return processGroup(pgid);
    }
  }

  before(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), "qod-shutdown-"));
    env = {
      QOD_DATA_DIR: dataDir,
      QOD_GRPC_PORT: String(await freePort()),
      QOD_HTTP_PORT: String(await freePort()),
      QOD_SUPAVISOR_HTTP_PORT: String(await freePort()),
      QOD_METRICS_PORT: String(await freePort()),
      QOD_EDGE_TX_PORT: String(await freePort()),
      QOD_EDGE_SESSION_PORT: String(await freePort()),
      QOD_EMBEDDED_PG_PORT: "0",
      QOD_API_KEY: TEST_API_KEY,
      QOD_LOG_LEVEL: "info",
      QOD_SHUTDOWN_GRACE_MS: "60000",
      QOD_BCRYPT_COST: "4",
    };
  });
  after(async function () {
    if (this.currentTest?.state === "failed" && running) process.stdout.write(running.output());
    clients?.close();
    for (const pgid of groups) if (processGroup(pgid).length > 0) process.kill(-pgid, "SIGKILL");
    await stopOrphan(path.join(dataDir, "pg"), quietLogger);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("lets 12 CreateDatabase calls in flight (6 REST, 6 gRPC) finish READY on SIGTERM to npm start, and leaves no process", async () => {
    clients = await start();
    const c = clients;
    await c.tenants.createTenant({ name: tenant });
    const base = `http://127.0.0.1:${env.QOD_HTTP_PORT}`;
    const rest = names.slice(0, 6).map((name) =>
      fetch(`${base}/api/database/create`, { method: "POST", headers: { "x-api-key": TEST_API_KEY, "content-type": "application/json" }, body: JSON.stringify({ tenant, name }) }).then(
        async (res) => ({ status: res.status, body: (await res.json()) as { name: string; status: string } }),
      ),
    );
    const grpc = names.slice(6).map((name) => c.databases.createDatabase({ tenant, name }, { apiKey: TEST_API_KEY, deadlineMs: 120_000 }));
    // Once provisioning has begun, every request has long been read.
    await waitFor("provisioning to begin", async () => (await c.databases.listDatabases({ tenant })).tenantDbs.length > 0, { everyMs: 5 });
    const npm = running!;
    process.kill(npm.child.pid!, "SIGTERM");

    const restAnswers = await Promise.all(rest);
    for (const answer of restAnswers) assert.deepEqual([answer.status, answer.body.status], [200, "READY"], JSON.stringify(answer.body));
    const grpcAnswers = await Promise.allSettled(grpc);
    for (const answer of grpcAnswers) {
      assert.equal(answer.status, "fulfilled", answer.status === "rejected" ? `${status[(answer.reason as ServiceError).code]}: ${(answer.reason as ServiceError).details}` : "");
      if (answer.status === "fulfilled") assert.equal(answer.value.status, DatabaseStatus.READY);
    }
    await npm.exited;
    assert.deepEqual(await leftovers(npm.child.pid!), [], npm.output());
    assert.match(npm.output(), /"msg":"shutting down"/);
    assert.match(npm.output(), /"msg":"stopped"/);
  });

  it("kept the 12 databases READY across the restart, and `kill <pid of npm start>` leaves nothing running", async () => {
    clients?.close();
    assert.deepEqual(processGroup(groups[0] ?? 0), [], "nothing of the first start runs any more");
    clients = await start();
    const listed = await clients.databases.listDatabases({ tenant });
    assert.deepEqual(
      listed.tenantDbs.map((d) => [d.name, d.status]).sort(),
      names.map((n) => [`${tenant}_${n}`, DatabaseStatus.READY]).sort(),
    );
    const npm = running!;
    process.kill(npm.child.pid!); // what `kill <pid>` sends: SIGTERM
    await npm.exited;
    assert.deepEqual(await leftovers(npm.child.pid!), [], npm.output());
  });
});
