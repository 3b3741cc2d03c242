// qodctl's parts in-process: the command tree (every command's help and example), flag parsing,
// the three output formats, terminal-safe text, credential precedence and the session file.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Command } from "commander";
import YAML from "yaml";
import { GROUPS } from "../src/cli/commands";
import { parseDuration } from "../src/cli/fields";
import { renderJson, renderTable, renderYaml } from "../src/cli/output";
import { isInteractive } from "../src/cli/progress";
import { buildProgram, run } from "../src/cli/program";
import { loadSchema } from "../src/cli/schema";
import { deleteSession, readSession, sessionPath, writeSession, type StoredSession } from "../src/cli/session-store";
import { resolveTarget } from "../src/cli/target";
import { safeText } from "../src/cli/terminal-text";

/** Runs qodctl in this process and captures what it prints. */
async function qodctl(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await run(args, { env, out: (text) => (stdout += text), err: (text) => (stderr += text) });
  return { code, stdout, stderr };
}

/** Every leaf command of the tree, as the words that run it. */
function leaves(command: Command, words: string[] = []): string[][] {
  if (command.commands.length === 0) return [words];
  return command.commands.flatMap((child) => leaves(child, [...words, child.name()]));
}

describe("qodctl units", () => {
  const schema = loadSchema();

  describe("the command tree", () => {
    const program = buildProgram(schema, { env: {}, out: () => {}, err: () => {} });

    it("has one command per RPC of every service", () => {
      const serviceName = (group: (typeof GROUPS)[number]) => Object.values(group.service!.Client.service)[0].path.split("/")[1];
      const covered = new Set(GROUPS.flatMap((g) => (g.commands ?? []).map((c) => `${serviceName(g)}.${c.rpc}`)));
      // Login, Logout and ExchangeOidcToken are login/logout's.
      for (const rpc of ["Login", "Logout", "ExchangeOidcToken"]) covered.add(`qod.v1.AuthService.${rpc}`);
      for (const service of ["qod.v1.TenantService", "qod.v1.DatabaseService", "qod.v1.AuthService", "qod.v1.PoolService"]) {
        for (const method of schema.registry.getService(service)!.methods) assert.ok(covered.has(`${service}.${method.name}`), `${service}.${method.name} has no command`);
      }
    });

    it("every command's --help exits 0 and shows an example", async () => {
      const all = leaves(program).filter((words) => words.length > 0);
      assert.ok(all.length >= 27, `${all.length} commands`);
      for (const words of all) {
        const result = await qodctl([...words, "--help"]);
        assert.equal(result.code, 0, words.join(" "));
        assert.match(result.stdout, /\nExamples:\n {2}\$ \S/, words.join(" "));
      }
    });

    it("makes flags from request fields: maps, integers, times, booleans; -f everywhere", async () => {
      const create = (await qodctl(["db", "create", "--help"])).stdout;
      assert.match(create, /--metastore <key=value,\.\.\.>\s+Per-database overrides of the Postgres/);
      assert.match(create, /--schema <text>\s+Schema that unqualified/);
      assert.match(create, /-f, --file <path\|->/);
      assert.match(create, /Calls qod\.v1\.DatabaseService\.CreateDatabase \(POST \/api\/database\/create\)/);
      assert.match((await qodctl(["db", "delete", "--help"])).stdout, /--drop\s+Also drop the Postgres database/);
      assert.match((await qodctl(["pool", "create", "--help"])).stdout, /--size <n>/);
      assert.match((await qodctl(["pat", "create", "--help"])).stdout, /--expire-time <time>/);
      // Secrets never get a flag.
      assert.doesNotMatch((await qodctl(["user", "create", "--help"])).stdout, /--password </);
      assert.doesNotMatch((await qodctl(["tenant", "create", "--help"])).stdout, /--id </);
    });
  });

  describe("usage mistakes exit 2 before any call", () => {
    const cases: [string, string[], RegExp][] = [
      ["a missing argument", ["tenant", "create"], /^error: missing required argument 'name'/],
      ["an unknown command", ["tenant", "frobnicate"], /^error: unknown command 'frobnicate'/],
      ["an unknown flag", ["tenant", "list", "--bogus"], /^error: unknown option '--bogus'/],
      ["a bad duration", ["--timeout", "soon", "tenant", "list"], /^error: --timeout: expected a duration/],
      ["a bad integer", ["pool", "create", "a", "b", "c", "--size", "two"], /^error: --size: expected an integer, got "two"/],
      ["a bad map", ["tenant", "create", "a", "--auth-config", "novalue"], /^error: --auth-config: expected key=value pairs/],
      ["a bad format", ["-o", "xml", "tenant", "list"], /^error: option '-o, --output <format>' argument 'xml' is invalid/],
      ["a bad shell", ["completion", "fish"], /^error: command-argument value .fish. is invalid for argument .shell./],
      ["an unreadable -f file", ["tenant", "create", "a", "-f", "/nonexistent/x.json"], /^error: cannot read \/nonexistent\/x\.json: ENOENT/],
      ["a bad server", ["--server", "a b", "tenant", "list"], /^error: --server: expected host:port/],
      ["a bad RFC 3339 time", ["pat", "create", "x", "--expire-time", "tomorrow"], /^error: invalid request: .*invalid RFC 3339/],
      ["an ID token without its tenant", ["login", "--id-token", "-"], /^error: --id-token needs --tenant/],
    ];
    for (const [what, args, expected] of cases) {
      it(what, async () => {
        const result = await qodctl(args, { QOD_SERVER: "127.0.0.1:1", QOD_API_KEY: "k" });
        assert.equal(result.code, 2, result.stderr);
        assert.match(result.stderr, expected);
        assert.equal(result.stdout, "");
      });
    }

    it("never echoes a bad map value (it may be a password)", async () => {
      const result = await qodctl(["db", "create", "a", "b", "--metastore", "pgPassword-hunter2"], { QOD_SERVER: "127.0.0.1:1" });
      assert.equal(result.code, 2);
      assert.doesNotMatch(result.stderr, /hunter2/);
    });
  });

  describe("progress", () => {
    it("spins only on an interactive terminal: never in a pipe, on a dumb terminal or in CI", () => {
      const tty = { isTTY: true } as NodeJS.WriteStream;
      assert.equal(isInteractive(tty, {}), true);
      assert.equal(isInteractive({ isTTY: false } as NodeJS.WriteStream, {}), false);
      assert.equal(isInteractive(tty, { TERM: "dumb" }), false);
      assert.equal(isInteractive(tty, { CI: "true" }), false);
    });
  });

  describe("flags", () => {
    it("parses durations", () => {
      assert.equal(parseDuration("500ms", false), 500);
      assert.equal(parseDuration("30s", false), 30_000);
      assert.equal(parseDuration("2m", false), 120_000);
      assert.equal(parseDuration("1.5h", false), 5_400_000);
      assert.equal(parseDuration("30d", false), 2_592_000_000);
      assert.equal(parseDuration("30", true), 30_000);
      assert.equal(parseDuration("30", false), undefined);
      assert.equal(parseDuration("-1s", true), undefined);
      assert.equal(parseDuration("1e9s", true), undefined);
    });
  });

  describe("output", () => {
    const tenantOut = schema.method("/qod.v1.TenantService/GetTenant").output;
    const listOut = schema.method("/qod.v1.TenantService/ListTenants").output;
    const views = { "qod.v1.Tenant": { plural: "tenants", columns: [["NAME", "name"], ["POOLS", "pools"], ["CREATED", "createTime"]] as const } };

    it("tables: one row per item, lists joined, timestamps to the second, aligned", async () => {
      const body = JSON.stringify({ tenants: [{ name: "acme", pools: ["a", "b"], createTime: "2026-01-02T03:04:05.678Z" }, { name: "b", pools: [], createTime: "2026-01-02T03:04:05Z" }], nextPageToken: "" });
      const rendered = await renderTable(body, listOut, views, "");
      assert.equal(rendered.stdout, "NAME   POOLS   CREATED\nacme   a,b     2026-01-02T03:04:05Z\nb              2026-01-02T03:04:05Z\n");
      assert.equal(rendered.stderr, "");
      assert.equal((await renderTable(JSON.stringify({ name: "x", pools: [] }), tenantOut, views, "")).stdout, "NAME   POOLS   CREATED\nx\n");
    });

    it("tables: no rows says so on stderr; another page says how to get it", async () => {
      const rendered = await renderTable(JSON.stringify({ tenants: [], nextPageToken: "abc" }), listOut, views, "");
      assert.deepEqual(rendered, { stdout: "", stderr: "No tenants found.\nMore tenants: add --page-token abc\n" });
    });

    it("tables: a message without a view is a field/value listing; an empty one prints the command's note", async () => {
      const whoami = schema.method("/qod.v1.AuthService/WhoAmI").output;
      const listing = await renderTable(JSON.stringify({ username: "admin", role: "admin", tenant: "", superuser: true, manageableTenants: [], credential: "session" }), whoami, views, "");
      assert.match(listing.stdout, /^username +admin\nrole +admin\ntenant\nsuperuser +true\nmanageableTenants\ncredential +session\n$/);
      const empty = schema.method("/qod.v1.TenantService/DeleteTenant").output;
      assert.deepEqual(await renderTable("{}", empty, views, "Tenant acme deleted."), { stdout: "Tenant acme deleted.\n", stderr: "" });
    });

    it("json: the API's bytes in a pipe; indented with controls escaped on a terminal (the same value)", () => {
      const body = JSON.stringify({ displayName: "a\u001b[31m\u009b\u202eb" });
      assert.equal(renderJson(body, false), `${body}\n`);
      const pretty = renderJson(body, true);
      assert.equal(pretty, '{\n  "displayName": "a\\u001b[31m\\u009b\\u202eb"\n}\n');
      assert.deepEqual(JSON.parse(pretty), JSON.parse(body));
    });

    it("yaml: the same value, with every control character escaped", async () => {
      const value = { tenants: [{ name: "acme", displayName: "x\u001b]0;t\u0007\u007f\u009b\u202e", authConfig: { "k\u001b": "v" } }], count: "12" };
      const yaml = await renderYaml(JSON.stringify(value));
      assert.ok(!/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/.test(yaml), yaml);
      assert.deepEqual(YAML.parse(yaml), value);
    });

    it("safeText makes C0, DEL, C1 and bidi controls visible and keeps the rest", () => {
      assert.equal(safeText("ok ünïcødé 名前"), "ok ünïcødé 名前");
      assert.equal(safeText("\u0000\n\u001b\u007f\u0085\u009b\u200f\u202e\u2066"), "\\u0000\\u000a\\u001b\\u007f\\u0085\\u009b\\u200f\\u202e\\u2066");
    });
  });

  describe("credentials and server", () => {
    const session: StoredSession = { server: "qod.example:50051", tls: true, token: "session-token", username: "ann", tenant: "", expireTime: "" };

    it("--api-key > QOD_API_KEY > --token > the stored session", () => {
      assert.deepEqual(resolveTarget({ apiKey: "flag", token: "t" }, { QOD_API_KEY: "env" }, session).credential, { apiKey: "flag" });
      assert.deepEqual(resolveTarget({ token: "t" }, { QOD_API_KEY: "env" }, session).credential, { apiKey: "env" });
      assert.deepEqual(resolveTarget({ token: "t" }, {}, session).credential, { token: "t" });
      assert.deepEqual(resolveTarget({}, {}, session).credential, { token: "session-token" });
      assert.deepEqual(resolveTarget({}, {}, undefined), { address: "127.0.0.1:50051", tls: false, ca: undefined, credential: {}, credentialSource: "none" });
    });

    it("--server > QOD_SERVER > the stored session's; the session's token and TLS go only to its own server", () => {
      assert.equal(resolveTarget({ server: "a:1" }, { QOD_SERVER: "b:2" }, session).address, "a:1");
      assert.equal(resolveTarget({}, { QOD_SERVER: "b:2" }, session).address, "b:2");
      const own = resolveTarget({}, {}, session);
      assert.deepEqual([own.address, own.tls, own.credentialSource], ["qod.example:50051", true, "session"]);
      const other = resolveTarget({ server: "evil.example:50051" }, {}, session);
      assert.deepEqual([other.tls, other.credential, other.credentialSource], [false, {}, "none"]);
      assert.deepEqual(resolveTarget({ ca: "ca.pem" }, {}, undefined).ca, path.resolve("ca.pem"));
    });

    it("stores the session 0600 in a 0700 directory under XDG_CONFIG_HOME (or ~/.config), and forgets it", () => {
      const dir = mkdtempSync(path.join(tmpdir(), "qodctl-store-"));
      try {
        const env = { XDG_CONFIG_HOME: path.join(dir, "xdg"), HOME: dir };
        assert.equal(sessionPath(env), path.join(dir, "xdg", "qodctl", "session.json"));
        assert.equal(sessionPath({ XDG_CONFIG_HOME: "relative", HOME: dir }), path.join(dir, ".config", "qodctl", "session.json"));
        const file = writeSession(env, session);
        assert.equal(statSync(file).mode & 0o777, 0o600);
        assert.equal(statSync(path.dirname(file)).mode & 0o777, 0o700);
        assert.deepEqual(readSession(env), session);
        writeFileSync(file, "{not json");
        assert.throws(() => readSession(env), /is damaged/);
        assert.equal(deleteSession(env), true);
        assert.equal(readSession(env), undefined);
        assert.equal(deleteSession(env), false);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe("completion", () => {
    it("bash: completes commands, aliases, subcommands, flags and flag values", async () => {
      const script = (await qodctl(["completion", "bash"])).stdout;
      const complete = (...words: string[]) =>
        execFileSync("bash", ["-c", `${script}\nCOMP_WORDS=(qodctl ${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length}; _qodctl; printf '%s\\n' "\${COMPREPLY[@]}"`], { encoding: "utf8" })
          .trim()
          .split("\n");
      assert.deepEqual(complete("te"), ["tenant", "tenants"]);
      assert.deepEqual(complete("tenants", "s"), ["set-auth"]);
      assert.deepEqual(complete("-o", "json", "db", "create", "acme", "sales", "--sch"), ["--schema"]);
      assert.deepEqual(complete("--output", "y"), ["yaml"]);
      assert.deepEqual(complete("--server", "db", "li"), [""], "a flag's value is not a command");
    });

    it("zsh: the same function through bashcompinit", async () => {
      const script = (await qodctl(["completion", "zsh"])).stdout;
      assert.match(script, /^# zsh completion for qodctl.*\nautoload -U \+X bashcompinit && bashcompinit\n/);
      assert.match(script, /setopt localoptions ksharrays/);
      assert.match(script, /\ncomplete -F _qodctl qodctl\n$/);
    });
  });
});
