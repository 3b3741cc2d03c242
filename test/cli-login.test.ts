// qodctl login/logout as a user runs them: the password through stdin and through a
// pseudo-terminal (never echoed), the session file (0600 in a 0700 directory), which commands
// then use it and where it is never sent, and logout revoking it on the server.
import assert from "node:assert/strict";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { stripVTControlCharacters } from "node:util";
import { status } from "@grpc/grpc-js";
import { sql } from "../src/db/sql";
import { startTestApp, TEST_API_KEY, type TestApp } from "./helpers/app";
import { buildCliBundle, cliHome, runCli, runCliOnTerminal, type CliHome, type CliResult } from "./helpers/cli";
import { expectError } from "./helpers/clients";
import { startTestIssuer, type TestIssuer } from "./helpers/issuer";
import { uniquePrefix } from "./helpers/postgres";

describe("qodctl login and logout", () => {
  let app: TestApp;
  let issuer: TestIssuer;
  const p = uniquePrefix("login");
  const tenant = `${p}_acme`;
  const homes: CliHome[] = [];
  const newHome = () => {
    const home = cliHome({ QOD_SERVER: app.grpcAddress });
    homes.push(home);
    return home;
  };
  const ok = (result: CliResult) => {
    assert.equal(result.code, 0, `exit ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
    return result;
  };
  const sessionFile = (home: CliHome) => path.join(home.configDir, "qodctl", "session.json");
  const storedToken = (home: CliHome) => (JSON.parse(readFileSync(sessionFile(home), "utf8")) as { token: string }).token;

  before(async () => {
    buildCliBundle();
    issuer = await startTestIssuer();
    // The test issuer is plain http on loopback, which only this switch lets the service trust.
    app = await startTestApp({ env: { QOD_OIDC_ALLOW_INSECURE: "true" } });
    await app.clients.tenants.createTenant({ name: tenant });
    await app.clients.auth.createUser({ tenant, username: "ann", password: "ann-pty-secret", role: "admin" });
  });
  after(async () => {
    for (const home of homes) home.remove();
    await app?.stop();
    await issuer?.close();
  });

  it("logs in with the password from stdin and stores the session 0600 in a 0700 directory", async () => {
    const home = newHome();
    const login = ok(await runCli(["login", "--username", "admin"], { env: home.env, input: "admin\n" }));
    assert.equal(login.stdout, "");
    assert.match(login.stderr, new RegExp(`^Logged in to ${app.grpcAddress} as admin; the session expires \\S+Z\\. Session stored in ${sessionFile(home)}\\.\\n$`));
    assert.equal(statSync(sessionFile(home)).mode & 0o777, 0o600);
    assert.equal(statSync(path.dirname(sessionFile(home))).mode & 0o777, 0o700);
    const stored = JSON.parse(readFileSync(sessionFile(home), "utf8")) as Record<string, unknown>;
    assert.deepEqual(Object.keys(stored).sort(), ["expireTime", "server", "tenant", "tls", "token", "username"]);
    assert.deepEqual([stored.server, stored.tls, stored.username, stored.tenant], [app.grpcAddress, false, "admin", ""]);
    assert.ok(!login.stderr.includes(stored.token as string), "the token is never printed");

    // The next commands use it, with no credential given.
    const whoami = JSON.parse(ok(await runCli(["whoami", "-o", "json"], { env: home.env })).stdout) as { username: string; credential: string };
    assert.deepEqual([whoami.username, whoami.credential], ["admin", "session"]);
  });

  it("logs in on a terminal: the username is echoed, the password is not", async () => {
    const home = newHome();
    const terminal = runCliOnTerminal(["login", "--tenant", tenant], { env: home.env });
    await terminal.waitFor("Username:");
    terminal.type("ann\r");
    await terminal.waitFor("Password:");
    terminal.type("ann-pty-secret\r");
    assert.equal(await terminal.exited, 0, terminal.screen());
    const screen = stripVTControlCharacters(terminal.screen());
    assert.match(screen, /Username: ann\r\r?\nPassword: \r?\n/);
    assert.ok(!screen.includes("ann-pty-secret"), `the password was echoed:\n${screen}`);
    assert.match(screen, new RegExp(`Logged in to ${app.grpcAddress} as ann \\(tenant ${tenant}\\)`));
    const whoami = JSON.parse(ok(await runCli(["whoami", "-o", "json"], { env: home.env })).stdout) as { username: string; tenant: string };
    assert.deepEqual([whoami.username, whoami.tenant], ["ann", tenant]);
  });

  it("a new password is asked twice on a terminal, without echo", async () => {
    const home = newHome();
    ok(await runCli(["login", "--tenant", tenant, "--username", "ann"], { env: home.env, input: "ann-pty-secret\n" }));
    const terminal = runCliOnTerminal(["passwd"], { env: home.env });
    for (const [prompt, answer] of [["Current password:", "ann-pty-secret"], ["New password:", "ann-new-secret"], ["Repeat new password:", "ann-new-secret"]] as const) {
      await terminal.waitFor(prompt);
      terminal.type(`${answer}\r`);
    }
    assert.equal(await terminal.exited, 0, terminal.screen());
    assert.ok(!/ann-(pty|new)-secret/.test(terminal.screen()), terminal.screen());
    assert.match(terminal.screen(), /Password changed\./);
    // The session that changed it stays valid.
    ok(await runCli(["whoami"], { env: home.env }));
    await app.clients.auth.login({ tenant, username: "ann", password: "ann-new-secret" }, {});
  });

  it("logs in with an OIDC ID token (ExchangeOidcToken) read from stdin", async () => {
    const oidc = `${p}_kc`;
    const iss = `${issuer.base}/realms/${oidc}`;
    await app.clients.tenants.createTenant({ name: oidc });
    await app.clients.auth.createUser({ tenant: oidc, username: "kate", password: "unused password" });
    // SetTenantAuth wants an https issuer; the loopback one is set in the state, as oidc.test.ts does.
    await app.pool.query(sql.typeAlias("void")`
      UPDATE tenants SET auth_provider = 'keycloak', auth_config = ${sql.jsonb({ issuer: iss, realm: oidc, clientId: "qod" })} WHERE name = ${oidc}`);
    const home = newHome();
    const idToken = await issuer.sign(iss, { aud: "qod", preferred_username: "kate" });
    const login = ok(await runCli(["login", "--tenant", oidc, "--id-token", "-"], { env: home.env, input: `${idToken}\n` }));
    assert.match(login.stderr, new RegExp(`^Logged in to \\S+ as kate \\(tenant ${oidc}\\)`));
    const whoami = JSON.parse(ok(await runCli(["whoami", "-o", "json"], { env: home.env })).stdout) as { username: string; credential: string };
    assert.deepEqual([whoami.username, whoami.credential], ["kate", "session"]);
  });

  it("the session goes only to its own server; QOD_API_KEY and --token come before it", async () => {
    const home = newHome();
    ok(await runCli(["login", "--username", "admin"], { env: home.env, input: "admin\n" }));
    // The same server under another name is another server: the token is not sent there.
    const elsewhere = await runCli(["--server", `localhost:${app.grpcPort}`, "whoami"], { env: home.env });
    assert.equal(elsewhere.code, 5);
    assert.match(elsewhere.stderr, /^unauthenticated: .*\nNot logged in: /);

    const withKey = JSON.parse(ok(await runCli(["whoami", "-o", "json"], { env: { ...home.env, QOD_API_KEY: TEST_API_KEY } })).stdout) as { credential: string };
    assert.equal(withKey.credential, "api_key");
    const withToken = await runCli(["--token", "not-a-session", "whoami"], { env: home.env });
    assert.equal(withToken.code, 5);
  });

  it("logout revokes the session on the server and forgets it; a stale session says to log in again", async () => {
    const home = newHome();
    ok(await runCli(["login", "--username", "admin"], { env: home.env, input: "admin\n" }));
    const token = storedToken(home);
    const stored = readFileSync(sessionFile(home));

    const logout = ok(await runCli(["logout"], { env: home.env }));
    assert.equal(logout.stderr, `Logged out of ${app.grpcAddress}.\n`);
    assert.throws(() => statSync(sessionFile(home)), /ENOENT/);
    await expectError(app.clients.auth.whoAmI({}, { bearer: token }), status.UNAUTHENTICATED, "unauthenticated");
    assert.equal(ok(await runCli(["logout"], { env: home.env })).stderr, "Not logged in.\n");

    writeFileSync(sessionFile(home), stored, { mode: 0o600 });
    const stale = await runCli(["tenant", "list"], { env: home.env });
    assert.equal(stale.code, 5);
    assert.match(stale.stderr, /^unauthenticated: .*\nThe stored session is no longer valid: run `qodctl login`\.\n$/);
    // Logging out of a session the server no longer knows is still logging out.
    ok(await runCli(["logout"], { env: home.env }));
  });

  it("a wrong password is 5, a missing one a usage mistake; repeated failures are rate limited (8)", async () => {
    const home = newHome();
    const wrong = await runCli(["login", "--username", "admin"], { env: home.env, input: "nope\n" });
    assert.equal(wrong.code, 5);
    assert.match(wrong.stderr, /^unauthenticated: /);
    assert.equal((await runCli(["login"], { env: home.env })).code, 2);
    // Throttling counts per source address too: this runs last in the suite.
    for (let i = 0; i < app.config.loginMaxFailures; i++) {
      await app.clients.auth.login({ username: "admin", password: "wrong" }, {}).catch(() => undefined);
    }
    const limited = await runCli(["login", "--username", "admin"], { env: home.env, input: "admin\n" });
    assert.equal(limited.code, 8);
    assert.match(limited.stderr, /^rate_limited: /);
    assert.throws(() => statSync(sessionFile(home)), /ENOENT/);
  });
});
