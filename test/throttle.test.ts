import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { startTestApp, type TestApp } from "./helpers/app";
import { expectError } from "./helpers/clients";
import { uniquePrefix } from "./helpers/postgres";
import { waitFor } from "./helpers/wait";

describe("login throttling", () => {
  let app: TestApp;
  const p = uniquePrefix("th");
  const PASSWORD = "the right password";
  const MAX = 3;
  let sources = 0;
  /** Each test fails from its own address (calls from loopback may name one in x-forwarded-for). */
  const newSource = () => ({ "x-forwarded-for": `198.51.100.${++sources}` });

  const login = (username: string, password: string, headers: Record<string, string>, tenant = p) =>
    app.clients.auth.login({ tenant, username, password }, { headers });
  const failTimes = async (n: number, username: string, headers: Record<string, string>) => {
    for (let i = 0; i < n; i++) await expectError(login(username, "wrong password", headers), status.UNAUTHENTICATED, "unauthenticated");
  };
  before(async () => {
    app = await startTestApp({ env: { QOD_LOGIN_MAX_FAILURES: String(MAX), QOD_LOGIN_WINDOW_SEC: "2" } });
    await app.clients.tenants.createTenant({ name: p });
    for (const username of ["ann", "bob", "cid", "dan"]) await app.clients.auth.createUser({ tenant: p, username, password: PASSWORD });
  });
  after(async () => {
    await app.stop();
  });

  it("answers rate_limited after the burst, even to the right password, and lets it through after the window", async () => {
    await failTimes(MAX, "ann", newSource());
    // A fresh source: the account's own counter blocks.
    const err = await expectError(login("ann", PASSWORD, newSource()), status.RESOURCE_EXHAUSTED, "rate_limited");
    assert.equal(err.message.includes(PASSWORD), false);
    const started = Date.now();
    await waitFor("the window to pass", () => login("ann", PASSWORD, newSource()).then(() => true, () => false), { timeoutMs: 5000, everyMs: 100 });
    const waited = Date.now() - started;
    assert.ok(waited > 500, `let through after ${waited} ms`);
  });

  it("throttles a source that sprays many accounts", async () => {
    const source = newSource();
    for (let i = 0; i < MAX; i++) await expectError(login(`nobody${i}`, "guess", source), status.UNAUTHENTICATED, "unauthenticated");
    await expectError(login("bob", PASSWORD, source), status.RESOURCE_EXHAUSTED, "rate_limited");
    // The account itself is not blocked from elsewhere.
    await login("bob", PASSWORD, newSource());
  });

  it("clears the account's count on a successful login", async () => {
    await failTimes(MAX - 1, "cid", newSource());
    await login("cid", PASSWORD, newSource());
    await failTimes(MAX - 1, "cid", newSource());
    await login("cid", PASSWORD, newSource());
  });

  it("counts the superuser realm apart from a tenant's user of the same name", async () => {
    await failTimes(MAX, "dan", newSource());
    await expectError(login("dan", PASSWORD, newSource()), status.RESOURCE_EXHAUSTED, "rate_limited");
    // `dan` in the superuser realm is another account (it does not exist: a plain refusal).
    await expectError(login("dan", PASSWORD, newSource(), ""), status.UNAUTHENTICATED, "unauthenticated");
  });

  it("throttles wrong current passwords in ChangePassword too", async () => {
    const user = `${p}_pw`;
    await app.clients.auth.createUser({ username: user, password: PASSWORD });
    const { token } = await app.clients.auth.login({ username: user, password: PASSWORD }, { headers: newSource() });
    const change = (currentPassword: string) =>
      app.clients.auth.changePassword({ currentPassword, newPassword: "another good password" }, { apiKey: token, headers: newSource() });
    for (let i = 0; i < MAX; i++) await expectError(change("wrong password"), status.INVALID_ARGUMENT, "invalid_current_password");
    await expectError(change(PASSWORD), status.RESOURCE_EXHAUSTED, "rate_limited");
  });

  it("keeps its counts in the state database, so a restart (or another replica) sees them", async () => {
    await failTimes(MAX, "bob", newSource());
    app = await app.restart();
    await expectError(login("bob", PASSWORD, newSource()), status.RESOURCE_EXHAUSTED, "rate_limited");
  });
});
