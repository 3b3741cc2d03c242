// The state Postgres stops under load and comes back (issue 11, reliability suite): 8 clients
// call GetTenant, ListTenants and CreateTenant while a throwaway Postgres is shut down fast, then
// immediately, 5 s each time. In the gap calls answer UNAVAILABLE `unavailable` (never INTERNAL,
// never past their deadline) and health says NOT_SERVING; within 5 s of Postgres being back every
// call succeeds; no tenant answered OK is lost; the service never stops. GET /readyz follows
// (issue 14): 503 naming the state database while it is down, 200 again once it is back.
import assert from "node:assert/strict";
import { performance } from "node:perf_hooks";
import { status, type ServiceError } from "@grpc/grpc-js";
import { BinaryReader } from "@bufbuild/protobuf/wire";
import { createApp, type App } from "../src/app";
import { loadConfig } from "../src/config";
import { migrate } from "../src/db/migrate";
import { pgUrl } from "../src/db/pool";
import { connectState, type StateDatabase } from "../src/db/state";
import { TEST_API_KEY, TEST_SESSION_SECRET, TEST_VAULT_KEY } from "./helpers/app";
import { clientsFor, decodeError, type Clients } from "./helpers/clients";
import { quietLogger, startPostgres, type TestPostgres } from "./helpers/postgres";
import { rawClient } from "./helpers/raw-grpc";
import { waitFor } from "./helpers/wait";

const CLIENTS = 8;
const DEADLINE_MS = 2_000;
const GAP_MS = 5_000;
const RECOVERY_MS = 5_000;

interface Outcome {
  startedAt: number;
  ms: number;
  method: string;
  code: status;
  reason: string;
  created?: string;
}

describe("the state Postgres restarting under load", function () {
  this.timeout(180_000);
  let postgres: TestPostgres;
  let state: StateDatabase;
  let app: App;
  let clients: Clients;
  let health: ReturnType<typeof rawClient>;
  let readyz: () => Promise<{ status: number; body: { status: string; checks: Record<string, string> } }>;
  const outcomes: Outcome[] = [];
  const seeded: string[] = [];
  let loading = true;
  let load: Promise<void>;
  let serial = 0;

  async function servingStatus(): Promise<number> {
    const answer = await health.call("/grpc.health.v1.Health/Check", new Uint8Array(), {}, { deadlineMs: 1_000 });
    if (answer.code !== status.OK || !answer.response) return -1;
    if (answer.response.length === 0) return 0;
    const reader = new BinaryReader(answer.response);
    reader.tag();
    return reader.int32(); // 1 SERVING, 2 NOT_SERVING
  }

  async function client(id: number): Promise<void> {
    for (let i = 0; loading; i++) {
      const kind = i % 3;
      const method = kind === 0 ? "GetTenant" : kind === 1 ? "ListTenants" : "CreateTenant";
      const name = `pr${id}_${++serial}`;
      const startedAt = performance.now();
      const options = { apiKey: TEST_API_KEY, deadlineMs: DEADLINE_MS };
      const call =
        kind === 0
          ? clients.tenants.getTenant({ name: seeded[i % seeded.length] }, options)
          : kind === 1
            ? clients.tenants.listTenants({ pageSize: 10 }, options)
            : clients.tenants.createTenant({ name }, options);
      try {
        await call;
        outcomes.push({ startedAt, ms: performance.now() - startedAt, method, code: status.OK, reason: "", ...(kind === 2 ? { created: name } : {}) });
      } catch (err) {
        const e = err as ServiceError;
        const reason = e.metadata?.get("grpc-status-details-bin").length ? decodeError(e).reason : "";
        outcomes.push({ startedAt, ms: performance.now() - startedAt, method, code: e.code, reason });
      }
    }
  }

  before(async () => {
    postgres = await startPostgres();
    const url = pgUrl(postgres.target, "postgres");
    await migrate(url, quietLogger);
    state = await connectState(url, quietLogger, 10);
    const config = loadConfig({
      QOD_GRPC_PORT: "0",
      QOD_HTTP_PORT: "0",
      QOD_SUPAVISOR_HTTP_PORT: "0",
      QOD_METRICS_PORT: "0",
      QOD_API_KEY: TEST_API_KEY,
      QOD_SESSION_JWT_SECRET: TEST_SESSION_SECRET,
      QOD_VAULT_ENC_KEY: TEST_VAULT_KEY,
      QOD_LOG_LEVEL: "silent",
      QOD_BCRYPT_COST: "4",
    });
    app = createApp({ config, state, target: postgres.target, logger: quietLogger });
    const { grpcPort, httpPort } = await app.start();
    readyz = async () => {
      const res = await fetch(`http://127.0.0.1:${httpPort}/readyz`, { signal: AbortSignal.timeout(2_000) });
      return { status: res.status, body: (await res.json()) as { status: string; checks: Record<string, string> } };
    };
    clients = clientsFor(`127.0.0.1:${grpcPort}`);
    health = rawClient(`127.0.0.1:${grpcPort}`);
    for (let i = 0; i < 5; i++) {
      const name = `seed${i}`;
      await clients.tenants.createTenant({ name });
      seeded.push(name);
    }
    load = Promise.all(Array.from({ length: CLIENTS }, (_, id) => client(id))).then(() => {});
  });
  after(async () => {
    loading = false;
    await load;
    clients?.close();
    health?.close();
    await app?.stop();
    await state?.end().catch(() => {});
    await postgres?.stop();
  });

  for (const mode of ["fast", "immediate"] as const) {
    it(`answers UNAVAILABLE while Postgres is down (${mode} shutdown), says NOT_SERVING, and recovers within ${RECOVERY_MS / 1000} s`, async () => {
      await waitFor("calls to succeed before the stop", () => outcomes.filter((o) => o.code === status.OK).length > 20, { timeoutMs: 20_000 });
      assert.equal(await servingStatus(), 1, "SERVING before the stop");
      assert.deepEqual(await readyz(), { status: 200, body: { status: "ready", checks: { state_database: "ok", migrations: "ok", data_plane: "off", accepting_calls: "ok" } } });
      const before = outcomes.length;
      await postgres.halt(mode);
      const downAt = performance.now();
      await waitFor("health to say NOT_SERVING", async () => (await servingStatus()) === 2, { timeoutMs: GAP_MS });
      assert.deepEqual(await readyz(), { status: 503, body: { status: "not_ready", checks: { state_database: "failing", migrations: "ok", data_plane: "off", accepting_calls: "ok" } } });
      await waitFor("calls to fail in the gap", () => outcomes.slice(before).some((o) => o.startedAt > downAt && o.code !== status.OK), { timeoutMs: GAP_MS });
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, GAP_MS - (performance.now() - downAt)))); // the gap is the scenario, not a wait for a condition
      await postgres.resume();
      const upAt = performance.now();
      await waitFor("health to say SERVING", async () => (await servingStatus()) === 1, { timeoutMs: RECOVERY_MS });
      assert.equal((await readyz()).status, 200, "/readyz answers 200 again");
      // A few more rounds of every call after the recovery window.
      await waitFor("calls after the recovery window", () => outcomes.filter((o) => o.startedAt > upAt + RECOVERY_MS).length > CLIENTS * 6, { timeoutMs: 30_000 });

      const gap = outcomes.slice(before);
      const failures = gap.filter((o) => o.code !== status.OK);
      assert.deepEqual([...new Set(failures.map((o) => `${status[o.code]} ${o.reason}`))], ["UNAVAILABLE unavailable"], "every failure is UNAVAILABLE unavailable");
      const slowest = Math.max(...gap.map((o) => o.ms));
      assert.ok(slowest < DEADLINE_MS + 500, `no call outlives its deadline (slowest ${Math.round(slowest)} ms)`);
      const late = gap.filter((o) => o.startedAt > upAt + RECOVERY_MS && o.code !== status.OK);
      assert.deepEqual(late, [], `every call started ${RECOVERY_MS / 1000} s after Postgres is back succeeds`);
      const firstOk = gap.find((o) => o.startedAt > upAt && o.code === status.OK);
      assert.ok(firstOk, "calls succeed again");
    });
  }

  it("lost no tenant whose creation was answered OK, and kept serving throughout", async () => {
    loading = false;
    await load;
    const created = outcomes.flatMap((o) => (o.created ? [o.created] : []));
    assert.ok(created.length > 10, `${created.length} tenants created`);
    const names = new Set<string>();
    for (let pageToken = ""; ; ) {
      const page = await clients.tenants.listTenants({ pageSize: 1000, pageToken });
      for (const t of page.tenants) names.add(t.name);
      if (!(pageToken = page.nextPageToken)) break;
    }
    const lost = [...seeded, ...created].filter((n) => !names.has(n));
    assert.deepEqual(lost, []);
    const counts: Record<string, number> = {};
    for (const o of outcomes) counts[`${status[o.code]} ${o.reason}`.trim()] = (counts[`${status[o.code]} ${o.reason}`.trim()] ?? 0) + 1;
    process.stdout.write(`      [calls: ${JSON.stringify(counts)}]\n`);
  });
});
