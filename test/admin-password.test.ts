// The bootstrap superuser's password across restarts of the real process (src/auth/seed.ts): a
// warning while it is the default; QOD_ADMIN_PASSWORD, when set, replaces a different stored
// password at start (with an info line, ending the account's sessions) and changes nothing when it
// matches; unset, a password changed through the API is kept.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { z } from "zod";
import { freePort } from "../src/db/embedded";
import { createPool, pgUrl } from "../src/db/pool";
import { sql } from "../src/db/sql";
import { testEnv } from "./helpers/app";
import { createTestDatabase, dropDatabase, quietLogger, sharedPostgres } from "./helpers/postgres";
import { removeServerData, startServerProcess, type ServerProcess } from "./helpers/process";

const DEFAULT_WARNING = "the bootstrap superuser still has the default password: set QOD_ADMIN_PASSWORD (applied at the next start) or change it (qodctl passwd)";
const REPLACED = "QOD_ADMIN_PASSWORD differs from the bootstrap superuser's stored password: replaced it, and ended the account's sessions";

describe("the bootstrap superuser's password and QOD_ADMIN_PASSWORD, across restarts of npm start", function () {
  this.timeout(120_000);
  let database: string;
  let dataDir: string;
  let server: ServerProcess | undefined;
  let httpBase = "";

  /** Stops the running process, if any, and starts one with QOD_ADMIN_PASSWORD as given (unset when undefined). */
  async function restart(adminPassword?: string): Promise<ServerProcess> {
    if (server) assert.equal(await server.kill("SIGTERM"), 0, server.output());
    const grpcPort = await freePort();
    const httpPort = await freePort();
    httpBase = `http://127.0.0.1:${httpPort}`;
    const env = testEnv(database, dataDir, { QOD_GRPC_PORT: String(grpcPort), QOD_HTTP_PORT: String(httpPort), QOD_LOG_LEVEL: "info" });
    delete env.QOD_API_KEY;
    if (adminPassword !== undefined) env.QOD_ADMIN_PASSWORD = adminPassword;
    server = await startServerProcess(env, grpcPort);
    return server;
  }
  /** The process's log lines about the bootstrap superuser, as [level, message]. */
  const adminLines = (s: ServerProcess) =>
    s
      .output()
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as { level: number; msg: string; username?: string })
      .filter((line) => line.username === "admin")
      .map((line) => [line.level === 40 ? "warn" : line.level === 30 ? "info" : String(line.level), line.msg]);
  async function login(password: string): Promise<string | number> {
    const res = await fetch(`${httpBase}/api/auth/login`, { method: "POST", body: JSON.stringify({ username: "admin", password }) });
    return res.status === 200 ? ((await res.json()) as { token: string }).token : res.status;
  }
  const whoami = async (token: string) => (await fetch(`${httpBase}/api/auth/whoami`, { headers: { "X-API-Key": token } })).status;

  before(async () => {
    database = await createTestDatabase();
    dataDir = mkdtempSync(path.join(tmpdir(), "qod-admin-pw-"));
  });
  after(async () => {
    await server?.kill("SIGTERM");
    await removeServerData(dataDir);
    await dropDatabase(sharedPostgres(), database);
  });

  it("unset at the first start: admin/admin, with a warning at every start while it stays so", async () => {
    const first = await restart();
    assert.deepEqual(adminLines(first), [
      ["info", "created the bootstrap superuser"],
      ["warn", DEFAULT_WARNING],
    ]);
    assert.equal(typeof (await login("admin")), "string");
    const again = await restart();
    assert.deepEqual(adminLines(again), [["warn", DEFAULT_WARNING]]);
  });

  it("set later: replaces the stored password at start, says so, and ends the account's sessions; no warning", async () => {
    const before = await login("admin");
    assert.equal(typeof before, "string");
    const started = await restart("env-password-1");
    assert.deepEqual(adminLines(started), [["info", REPLACED]]);
    assert.equal(await login("admin"), 401);
    assert.equal(await whoami(before as string), 401, "the old session ended");
    assert.equal(typeof (await login("env-password-1")), "string");
    assert.ok(!started.output().includes("env-password-1"), "the password is never logged");

    const state = await createPool(pgUrl(sharedPostgres().target, database), quietLogger, { maximumPoolSize: 1 });
    try {
      const audit = await state.any(sql.type(z.object({ actor: z.string(), action: z.string(), target: z.string() }))`
        SELECT actor, action, target FROM audit_log WHERE action = 'user.password_change'`);
      assert.deepEqual(audit, [{ actor: "QOD_ADMIN_PASSWORD", action: "user.password_change", target: "admin" }]);
    } finally {
      await state.end();
    }
  });

  it("set and matching: nothing changes, sessions survive the restart", async () => {
    const token = await login("env-password-1");
    assert.equal(typeof token, "string");
    const started = await restart("env-password-1");
    assert.deepEqual(adminLines(started), []);
    assert.equal(await whoami(token as string), 200);
  });

  it("unset again: a password changed through the API is kept across restarts", async () => {
    const token = (await login("env-password-1")) as string;
    const changed = await fetch(`${httpBase}/api/auth/change-password`, {
      method: "POST",
      headers: { "X-API-Key": token },
      body: JSON.stringify({ currentPassword: "env-password-1", newPassword: "api-password-2" }),
    });
    assert.equal(changed.status, 200, await changed.text());
    const started = await restart();
    assert.deepEqual(adminLines(started), []);
    assert.equal(typeof (await login("api-password-2")), "string");
    assert.equal(await login("env-password-1"), 401);
  });

  it("set to the default itself: replaced, and still warned about", async () => {
    const started = await restart("admin");
    assert.deepEqual(adminLines(started), [
      ["info", REPLACED],
      ["warn", DEFAULT_WARNING],
    ]);
    assert.equal(typeof (await login("admin")), "string");
  });
});
