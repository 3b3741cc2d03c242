// qodctl against a real server, run as a user runs it: a child process with a private home
// (HOME and XDG_CONFIG_HOME) per test.
// (Help of every command, usage mistakes and the output formats are in cli-units.test.ts.)
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Metadata, Server, ServerCredentials, status, type ServiceError } from "@grpc/grpc-js";
import YAML from "yaml";
import { BadRequest, ErrorInfo } from "../gen/google/rpc/error_details";
import { Status } from "../gen/google/rpc/status";
import { TenantServiceService } from "../gen/qod/v1/tenant";
import { sql } from "../src/db/sql";
import { startTestApp, TEST_API_KEY, type TestApp } from "./helpers/app";
import { stripVTControlCharacters } from "node:util";
import { buildCliBundle, cliHome, QODCTL_BIN, runCli, runCliOnTerminal, ok, failed, type CliHome, type CliResult } from "./helpers/cli";
import { dropDatabasesWithPrefix, pgDatabases } from "./helpers/databases";
import { sharedPostgres, uniquePrefix } from "./helpers/postgres";
import { REPO_ROOT } from "./helpers/process";

const ESC = "\u001b";
/** Anything a terminal would act on, except the newline. */
const TERMINAL_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/;

describe("qodctl", () => {
  let app: TestApp;
  let home: CliHome;
  const p = uniquePrefix("cli");
  const acme = `${p}_acme`;
  /** qodctl with the static key in QOD_API_KEY, against the suite's server. */
  const qodctl = (args: string[], input?: string): Promise<CliResult> => runCli(args, { env: { ...home.env, QOD_API_KEY: TEST_API_KEY }, input });
  const rest = async (route: string) => {
    const res = await fetch(`${app.httpBase}${route}`, { headers: { "X-API-Key": TEST_API_KEY } });
    assert.equal(res.status, 200);
    return res.text();
  };

  before(async () => {
    buildCliBundle();
    app = await startTestApp();
    await app.clients.tenants.createTenant({ name: acme, displayName: "Acme Corp" });
  });
  after(async () => {
    await app?.stop();
    await dropDatabasesWithPrefix(sharedPostgres(), p);
  });
  beforeEach(() => {
    home = cliHome({ QOD_SERVER: app.grpcAddress });
  });
  afterEach(() => home.remove());

  describe("running it", () => {
    it("--help exits 0 with examples, the exit codes and the credential order", async () => {
      const top = ok(await qodctl(["--help"]));
      assert.match(top.stdout, /\nExamples:\n {2}\$ qodctl /);
      assert.match(top.stdout, /Exit codes:\n {2}0 {2}success\n/);
      assert.match(top.stdout, /--api-key, QOD_API_KEY, --token/);
    });

    it("the clone's bin (the sources through tsx) behaves as the bundle", async () => {
      const [viaBin, viaBundle] = await Promise.all([runCli(["tenant", "get", "--help"], { env: home.env, entry: QODCTL_BIN }), qodctl(["tenant", "get", "--help"])]);
      assert.equal(ok(viaBin).stdout, viaBundle.stdout);
      assert.match(viaBin.stdout, /Examples:\n {2}\$ qodctl tenant get acme/);
    });

    it("npx qodctl works in the clone", () => {
      const out = execFileSync("npx", ["--offline", "qodctl", "--version"], { cwd: REPO_ROOT, env: { ...home.env, npm_config_update_notifier: "false" }, encoding: "utf8" });
      assert.match(out, /^\d+\.\d+\.\d+\n$/);
    });
  });

  describe("tenants, databases and pools", () => {
    it("creates, disables, enables, re-authenticates, lists and deletes a tenant", async () => {
      const t = `${p}_cycle`;
      const created = ok(await qodctl(["tenant", "create", t, "--display-name", "Cycle Inc", "--auth-provider", "keycloak", "--auth-config", "issuer=https://sso.cycle.example/auth,realm=cycle,clientId=qod"]));
      assert.match(created.stdout, /^NAME +DISPLAY NAME +AUTH +DISABLED +POOLS +CREATED\n/);
      assert.match(created.stdout, new RegExp(`\\n${t} +Cycle Inc +keycloak +false +\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ\\n$`));

      const disabled = JSON.parse(ok(await qodctl(["-o", "json", "tenant", "disable", t])).stdout) as { disabled: boolean; authConfig: object };
      assert.equal(disabled.disabled, true);
      assert.deepEqual(disabled.authConfig, { issuer: "https://sso.cycle.example/auth", realm: "cycle", clientId: "qod" });
      ok(await qodctl(["tenant", "enable", t]));
      ok(await qodctl(["tenant", "set-auth", t, "--auth-provider", "db"]));
      const list = ok(await qodctl(["tenant", "list"]));
      assert.match(list.stdout, new RegExp(`^${t} +Cycle Inc +db +false`, "m"));

      assert.equal(ok(await qodctl(["tenant", "delete", t])).stdout, `Tenant ${t} deleted.\n`);
      failed(await qodctl(["tenant", "get", t]), 3, /^not_found: /);
    });

    it("creates databases (memory at once, ducklake provisioned), updates and deletes them", async () => {
      const memory = ok(await qodctl(["db", "create", acme, "scratch", "--kind", "memory"]));
      assert.match(memory.stdout, new RegExp(`^${acme}_scratch +memory +READY`, "m"));
      assert.equal(memory.stderr, "", "no spinner when stderr is not a terminal");

      // On a terminal, provisioning shows a spinner on stderr until the table.
      const lake = runCliOnTerminal(["db", "create", acme, "sales", "--kind", "ducklake", "--schema", "mart"], { env: { ...home.env, QOD_API_KEY: TEST_API_KEY } });
      assert.equal(await lake.exited, 0, lake.screen());
      const screen = stripVTControlCharacters(lake.screen());
      assert.match(screen, new RegExp(`^\\S Provisioning ${acme}_sales \\(DuckLake catalog\\)`));
      assert.match(screen, new RegExp(`\\n${acme}_sales +ducklake +READY +mart `));
      assert.deepEqual(await pgDatabases(sharedPostgres().admin, `${acme}_sales`), [`${acme}_sales`]);

      const list = ok(await qodctl(["db", "list", acme]));
      assert.deepEqual(list.stdout.split("\n").slice(1, -1).map((line) => line.split(/ +/)[0]), [`${acme}_sales`, `${acme}_scratch`]);
      const updated = JSON.parse(ok(await qodctl(["db", "update", acme, "scratch", "--default-database", "other", "-o", "json"])).stdout) as { defaultDatabase: string };
      assert.equal(updated.defaultDatabase, "other");

      assert.equal(ok(await qodctl(["db", "delete", acme, "scratch"])).stdout, `Database ${acme}/scratch deleted.\n`);
      ok(await qodctl(["db", "delete", acme, "sales", "--drop"]));
      assert.deepEqual(await pgDatabases(sharedPostgres().admin, `${acme}_sales`), []);
      assert.deepEqual(ok(await qodctl(["db", "list", acme])), { code: 0, stdout: "", stderr: "No databases found.\n" });
    });

    it("creates, lists and deletes pools; a tenant with pools is not deleted (exit 4, has_pools)", async () => {
      ok(await qodctl(["db", "create", acme, "bi_db", "--kind", "ducklake"]));
      const pool = ok(await qodctl(["pool", "create", acme, "bi_db", "bi", "--size", "2"]));
      assert.match(pool.stdout, new RegExp(`^POOL +USER +DATABASE +SIZE +DISABLED +READY +CREATED\\nbi +bi\\.${acme} +${acme}_bi_db +2 +false +true `));
      assert.match(pool.stdout, /\nPassword \(shown only now\): [A-Za-z0-9_-]{20,}\n$/);
      assert.doesNotMatch(ok(await qodctl(["-o", "json", "pool", "list", acme])).stdout, /password/);
      assert.match(ok(await qodctl(["pool", "disable", acme, "bi"])).stdout, new RegExp(`\\nbi +bi\\.${acme} +${acme}_bi_db +2 +true `));
      assert.match(ok(await qodctl(["pool", "enable", acme, "bi"])).stdout, new RegExp(`\\nbi +bi\\.${acme} +${acme}_bi_db +2 +false `));
      assert.match(ok(await qodctl(["pool", "scale", acme, "bi", "5"])).stdout, new RegExp(`\\nbi +bi\\.${acme} +${acme}_bi_db +5 `));
      failed(await qodctl(["pool", "scale", acme, "bi", "65"]), 7, /^invalid_size:\n  size: must be between 1 and 64 for a pool CreatePool made/);
      failed(await qodctl(["tenant", "delete", acme]), 4, /^has_pools: /);
      assert.equal(ok(await qodctl(["pool", "delete", acme, "bi"])).stdout, `Pool ${acme}/bi deleted.\n`);
      ok(await qodctl(["db", "delete", acme, "bi_db", "--drop"]));
    });

    it("takes the whole request as the API's JSON from -f (a file or stdin), under the arguments and flags", async () => {
      const file = path.join(home.dir, "tenant.json");
      const authConfig = { issuer: "https://accounts.google.com", hd: "file.example", clientId: "qod" };
      writeFileSync(file, JSON.stringify({ name: "ignored", display_name: "From File", authProvider: "google", authConfig }));
      const created = JSON.parse(ok(await qodctl(["-o", "json", "tenant", "create", `${p}_file`, "-f", file, "--display-name", "From Flag"])).stdout) as Record<string, unknown>;
      assert.deepEqual([created.name, created.displayName, created.authProvider, created.authConfig], [`${p}_file`, "From Flag", "google", authConfig]);

      const fromStdin = JSON.parse(ok(await qodctl(["-o", "json", "db", "create", `${p}_file`, "notes", "-f", "-"], JSON.stringify({ kind: "memory", defaultSchema: "s1" }))).stdout) as Record<string, unknown>;
      assert.deepEqual([fromStdin.name, fromStdin.kind, fromStdin.defaultSchema], [`${p}_file_notes`, "memory", "s1"]);

      failed(await qodctl(["tenant", "create", `${p}_x`, "-f", "-"], '{"bogus": 1}'), 2, /^error: invalid request: .*key "bogus" is unknown/);
    });
  });

  describe("output", () => {
    before(async () => {
      await app.clients.databases.createDatabase({ tenant: acme, name: "out", kind: "ducklake" });
      await app.clients.pools.createPool({ tenant: acme, tenantDb: "out", pool: "outpool" });
    });

    it("-o json is the JSON API's body for the same call", async () => {
      const pairs: [string[], string][] = [
        [["tenant", "list"], "/api/tenant/list"],
        [["tenant", "get", acme], `/api/tenant/get?name=${acme}`],
        [["db", "get", acme, "out"], `/api/database/get?tenant=${acme}&name=out`],
        [["pool", "list", acme], `/api/pool/list?tenant=${acme}`],
      ];
      const results = await Promise.all(pairs.map(([args]) => qodctl(["-o", "json", ...args])));
      for (const [i, [args, route]] of pairs.entries()) assert.equal(ok(results[i]).stdout, `${await rest(route)}\n`, args.join(" "));
    });

    it("-o yaml is the same value as YAML", async () => {
      const yaml = ok(await qodctl(["db", "list", acme, "-o", "yaml"])).stdout;
      assert.match(yaml, /^tenantDbs:\n {2}- id: td-/);
      assert.deepEqual(YAML.parse(yaml), JSON.parse(await rest(`/api/database/list?tenant=${acme}`)));
    });

    it("a page of a longer list says how to get the next", async () => {
      const page = ok(await qodctl(["tenant", "list", "--page-size", "1"]));
      assert.equal(page.stdout.split("\n").length, 3, page.stdout); // header, one row, final newline
      assert.match(page.stderr, /^More tenants: add --page-token \S+\n$/);
    });

    it("shows what the server stores (a display name with escape sequences) without acting on it", async () => {
      const evil = `${ESC}]0;pwned\u0007${ESC}[31mRed\u009b2J\u202eevil`;
      // The service refuses such names now; one stored before that (or by another server) is put there directly.
      ok(await qodctl(["tenant", "create", `${p}_evil`]));
      await app.pool.query(sql.typeAlias("void")`UPDATE tenants SET display_name = ${evil} WHERE name = ${`${p}_evil`}`);
      const [table, yaml] = await Promise.all([qodctl(["tenant", "get", `${p}_evil`]), qodctl(["tenant", "get", `${p}_evil`, "-o", "yaml"])]);
      assert.ok(!TERMINAL_CONTROL.test(ok(table).stdout), JSON.stringify(table.stdout));
      assert.match(table.stdout, /\\u001b\]0;pwned\\u0007\\u001b\[31mRed\\u009b2J\\u202eevil/);
      assert.ok(!TERMINAL_CONTROL.test(ok(yaml).stdout), JSON.stringify(yaml.stdout));
      assert.equal((YAML.parse(yaml.stdout) as { displayName: string }).displayName, evil);
    });
  });

  describe("users and access tokens", () => {
    it("creates a user with the password from stdin; her session manages tokens and her password", async () => {
      const created = ok(await qodctl(["user", "create", "ann", "--tenant", acme, "--role", "admin"], "ann-secret-1\n"));
      assert.match(created.stdout, new RegExp(`^ann +${acme} +admin`, "m"));
      assert.ok(!`${created.stdout}${created.stderr}`.includes("ann-secret-1"));
      assert.match(ok(await qodctl(["user", "list", "--tenant", acme])).stdout, /^USERNAME +TENANT +ROLE +CREATED\nann /);

      const { token } = await app.clients.auth.login({ tenant: acme, username: "ann", password: "ann-secret-1" }, {});
      const asAnn = (args: string[], input?: string) => runCli(["--token", token, ...args], { env: home.env, input });
      const whoami = ok(await asAnn(["whoami"])).stdout;
      assert.match(whoami, /^username +ann\n/m);
      assert.match(whoami, /^credential +session$/m);

      const pat = JSON.parse(ok(await asAnn(["pat", "create", "ci", "--expire-time", "30d", "-o", "json"])).stdout) as { id: string; token: string; expireTime: string };
      assert.match(pat.token, /^qod_pat_/);
      const days = (Date.parse(pat.expireTime) - Date.now()) / 86_400_000;
      assert.ok(days > 29.9 && days < 30.1, pat.expireTime);
      const withPat = { env: { ...home.env, QOD_API_KEY: pat.token } };
      assert.match(ok(await runCli(["whoami", "-o", "json"], withPat)).stdout, /"credential":"access_token"/);
      assert.match(ok(await asAnn(["pat", "list"])).stdout, new RegExp(`^${pat.id} +ci `, "m"));
      assert.equal(ok(await asAnn(["pat", "revoke", pat.id])).stdout, `Access token ${pat.id} revoked.\n`);
      failed(await runCli(["whoami"], withPat), 5, /^unauthenticated: /);

      assert.equal(ok(await asAnn(["passwd"], "ann-secret-1\nann-secret-2\n")).stdout, "Password changed.\n");
      await app.clients.auth.login({ tenant: acme, username: "ann", password: "ann-secret-2" }, {});
      assert.equal(ok(await qodctl(["user", "delete", "ann", "--tenant", acme])).stdout, "User ann deleted.\n");
    });

    it("a missing password on stdin is a usage mistake (exit 2), and nothing is sent", async () => {
      failed(await qodctl(["user", "create", "bob", "--tenant", acme]), 2, /^error: expected the password on line 1 of standard input\n$/);
    });
  });

  describe("errors: `<reason>: <message>` on stderr, an exit status per class", () => {
    it("2: usage", async () => {
      failed(await qodctl(["db", "create", acme]), 2, /^error: missing required argument 'name'/);
    });

    it("3: not found", async () => {
      failed(await qodctl(["db", "get", acme, "nosuch"]), 3, /^not_found: database not found\n$/);
    });

    it("4: exists", async () => {
      failed(await qodctl(["tenant", "create", acme]), 4, /^exists: /);
    });

    it("5: unauthenticated (no credential, a wrong one) and forbidden", async () => {
      failed(await runCli(["tenant", "list"], { env: home.env }), 5, /^unauthenticated: .*\nNot logged in: run `qodctl login`, or set QOD_API_KEY\.\n$/);
      failed(await runCli(["--api-key", "wrong-key", "tenant", "list"], { env: home.env }), 5, /^unauthenticated: /);
      ok(await qodctl(["user", "create", "viewer", "--tenant", acme], "viewer-secret\n"));
      const { token } = await app.clients.auth.login({ tenant: acme, username: "viewer", password: "viewer-secret" }, {});
      failed(await runCli(["--token", token, "tenant", "create", `${p}_nope`], { env: home.env }), 5, /^superuser_required: /);
    });

    it("6: unavailable, deadline exceeded", async () => {
      const [down, late] = await Promise.all([
        runCli(["--server", "127.0.0.1:1", "tenant", "list"], { env: { ...home.env, QOD_API_KEY: TEST_API_KEY } }),
        qodctl(["--timeout", "1ms", "tenant", "list"]),
      ]);
      failed(down, 6, /^unavailable: /);
      failed(late, 6, /^deadline_exceeded: /);
    });

    it("7: invalid argument, with BadRequest's field violations one per line", async () => {
      const result = await qodctl(["db", "create", acme, "Bad-Name", "--kind", "floppy"]);
      failed(result, 7, /^invalid_\w+:\n/);
      const violations = result.stderr.trimEnd().split("\n").slice(1);
      assert.ok(violations.length >= 2, result.stderr);
      for (const line of violations) assert.match(line, /^ {2}\w+: \S/);
    });
  });

  describe("a hostile server, over TLS", () => {
    let fake: Server;
    let address: string;
    let certDir: string;
    let ca: string;
    const controls = `${ESC}[2J${ESC}]0;owned\u0007cleared`;

    before(async () => {
      // A self-signed certificate for 127.0.0.1: qodctl trusts it only through --ca.
      certDir = mkdtempSync(path.join(tmpdir(), "qodctl-tls-"));
      ca = path.join(certDir, "ca.pem");
      const key = path.join(certDir, "key.pem");
      execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1", "-keyout", key, "-out", ca], { stdio: "ignore" });
      // Its status carries terminal control sequences in the reason, the message and a violation.
      const details = Status.encode({
        code: status.INVALID_ARGUMENT,
        message: controls,
        details: [
          { typeUrl: "type.googleapis.com/google.rpc.ErrorInfo", value: Buffer.from(ErrorInfo.encode({ reason: `${ESC}[31mred_reason`, domain: "qod.v1", metadata: {} }).finish()) },
          { typeUrl: "type.googleapis.com/google.rpc.BadRequest", value: Buffer.from(BadRequest.encode({ fieldViolations: [{ field: `na${ESC}[1Ame`, description: "\u009b31mbad\u202e" }] }).finish()) },
        ],
      }).finish();
      fake = new Server();
      fake.addService(TenantServiceService, {
        getTenant: (_call: unknown, callback: (err: Partial<ServiceError>) => void) => {
          const metadata = new Metadata();
          metadata.set("grpc-status-details-bin", Buffer.from(details));
          callback({ code: status.INVALID_ARGUMENT, details: controls, metadata });
        },
      });
      const credentials = ServerCredentials.createSsl(null, [{ cert_chain: readFileSync(ca), private_key: readFileSync(key) }]);
      const port = await new Promise<number>((resolve, reject) => fake.bindAsync("127.0.0.1:0", credentials, (err, bound) => (err ? reject(err) : resolve(bound))));
      address = `127.0.0.1:${port}`;
    });
    after(() => {
      fake?.forceShutdown();
      if (certDir) rmSync(certDir, { recursive: true, force: true });
    });

    it("its reason, message and violations are printed with the escapes made visible", async () => {
      const result = await runCli(["--server", address, "--ca", ca, "--api-key", "k", "tenant", "get", "acme"], { env: home.env });
      failed(result, 7, /^\\u001b\[31mred_reason: /);
      assert.ok(!TERMINAL_CONTROL.test(result.stderr), JSON.stringify(result.stderr));
      assert.equal(result.stderr, "\\u001b[31mred_reason: \\u001b[2J\\u001b]0;owned\\u0007cleared\n  na\\u001b[1Ame: \\u009b31mbad\\u202e\n");
    });

    it("1: any other failure (an RPC the server does not implement)", async () => {
      failed(await runCli(["--server", address, "--ca", ca, "--api-key", "k", "tenant", "list"], { env: home.env }), 1, /^unimplemented: /);
    });

    it("is unreachable without TLS, or with TLS that does not trust its certificate (6)", async () => {
      const [plain, untrusted] = await Promise.all([
        runCli(["--server", address, "--api-key", "k", "tenant", "get", "acme"], { env: home.env }),
        runCli(["--server", address, "--tls", "--api-key", "k", "tenant", "get", "acme"], { env: home.env }),
      ]);
      failed(plain, 6, /^unavailable: /);
      failed(untrusted, 6, /^unavailable: /);
    });
  });
});
