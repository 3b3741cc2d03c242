// qodctl's Supavisor commands as a user runs them (a child process with a private home) against a
// real server whose tenants' upstream is the run's Postgres: put from a file, get (its -o json is
// the API's JSON), ban and unban, terminate, the manager's credentials from stdin, delete, and the
// exit status of each kind of failure.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { sql } from "../src/db/sql";
import { startTestApp, TEST_API_KEY, type TestApp } from "./helpers/app";
import { buildCliBundle, cliHome, runCli, ok, failed, type CliHome, type CliResult } from "./helpers/cli";
import { sharedPostgres, uniquePrefix } from "./helpers/postgres";

describe("qodctl supavisor", function () {
  this.timeout(60_000);
  let app: TestApp;
  let home: CliHome;
  const p = uniquePrefix("clisv");
  const role = `${p}_app`;
  const rolePassword = `pw-${randomBytes(8).toString("hex")}`;
  const qodctl = (args: string[], input?: string): Promise<CliResult> => runCli(args, { env: { ...home.env, QOD_API_KEY: TEST_API_KEY }, input });
  /** The API's JSON for the same call, as Supavisor's clients read it. */
  const rest = async (route: string) => {
    const res = await fetch(`${app.httpBase}${route}`, { headers: { "X-API-Key": TEST_API_KEY } });
    assert.equal(res.status, 200);
    return res.text();
  };
  /** A tenant.json as Supavisor's PUT takes it: the run's Postgres, as `role`. */
  const tenantFile = (name: string, tenant: Record<string, unknown> = {}) => {
    const file = path.join(home.dir, name);
    const body = {
      tenant: {
        db_host: sharedPostgres().target.host,
        db_port: sharedPostgres().target.port,
        db_database: "postgres",
        require_user: true,
        users: [{ db_user: role, db_password: rolePassword, mode_type: "transaction", pool_size: 3 }],
        ...tenant,
      },
    };
    writeFileSync(file, JSON.stringify(body));
    return file;
  };

  before(async () => {
    buildCliBundle();
    app = await startTestApp();
    await sharedPostgres().admin.query(sql.typeAlias("void")`CREATE ROLE ${sql.identifier([role])} LOGIN PASSWORD ${sql.literalValue(rolePassword)}`);
  });
  after(async () => {
    await app?.stop();
    await sharedPostgres().admin.query(sql.typeAlias("void")`DROP ROLE IF EXISTS ${sql.identifier([role])}`);
  });
  beforeEach(() => {
    home = cliHome({ QOD_SERVER: app.grpcAddress });
  });
  afterEach(() => home.remove());

  it("health: the state database answers (no credential needed); -o json is GET /api/health", async () => {
    const table = ok(await runCli(["supavisor", "health"], { env: home.env }));
    assert.match(table.stdout, /status +ok/);
    assert.equal(ok(await qodctl(["-o", "json", "supavisor", "health"])).stdout, `${await rest("/api/health")}\n`);
  });

  it("puts dev_tenant from tenant.json, gets it (-o json equal to the API's), bans, unbans, terminates and deletes it", async () => {
    const put = ok(await qodctl(["supavisor", "tenant", "put", "dev_tenant", "-f", tenantFile("tenant.json")]));
    assert.match(put.stdout, /dev_tenant/);
    assert.ok(!put.stdout.includes(rolePassword), "passwords are never shown");

    const json = ok(await qodctl(["-o", "json", "supavisor", "tenant", "get", "dev_tenant"])).stdout;
    assert.equal(json, `${await rest("/api/tenants/dev_tenant")}\n`);
    const data = (JSON.parse(json) as { data: { external_id: string; db_port: number; users: { db_user: string }[] } }).data;
    assert.deepEqual([data.external_id, data.db_port, data.users.map((u) => u.db_user)], ["dev_tenant", sharedPostgres().target.port, [role]]);
    assert.ok(!json.includes(rolePassword));

    const until = new Date(Date.now() + 86_400_000).toISOString().replace(/\.\d+Z$/, "Z");
    const banned = JSON.parse(ok(await qodctl(["-o", "json", "supavisor", "tenant", "ban", "dev_tenant", "--ban-reason", "abuse", "--banned-until", until])).stdout) as { data: Record<string, unknown> };
    assert.deepEqual([banned.data.banned, banned.data.ban_reason, banned.data.banned_until], [true, "abuse", until]);
    assert.equal(ok(await qodctl(["-o", "json", "supavisor", "tenant", "get", "dev_tenant"])).stdout, `${await rest("/api/tenants/dev_tenant")}\n`);
    const unbanned = JSON.parse(ok(await qodctl(["-o", "json", "supavisor", "tenant", "unban", "dev_tenant"])).stdout) as { data: Record<string, unknown> };
    assert.equal(unbanned.data.banned, false);

    assert.match(ok(await qodctl(["supavisor", "tenant", "terminate", "dev_tenant"])).stdout, /result +ok/);
    // A Supavisor tenant is a tenant: QOD's commands see it.
    assert.match(ok(await qodctl(["tenant", "get", "dev_tenant"])).stdout, /\ndev_tenant +dev_tenant +db +false +/);

    assert.equal(ok(await qodctl(["supavisor", "tenant", "delete", "dev_tenant"])).stdout, "Tenant dev_tenant deleted.\n");
    failed(await qodctl(["supavisor", "tenant", "get", "dev_tenant"]), 3, /^not_found: /);
  });

  it("update-auth-credentials reads the manager's new password from stdin and tries it on the upstream first", async () => {
    const managed = tenantFile("managed.json", {
      require_user: false,
      auth_query: "SELECT rolname FROM pg_roles WHERE rolname=$1",
      users: [{ db_user: role, db_password: rolePassword, mode_type: "transaction", is_manager: true }],
    });
    ok(await qodctl(["supavisor", "tenant", "put", `${p}_managed`, "-f", managed]));
    const newPassword = `pw-${randomBytes(8).toString("hex")}`;
    const update = ["supavisor", "tenant", "update-auth-credentials", `${p}_managed`, role];
    // Not yet the upstream's password: refused, naming the field, never the password.
    const refused = await qodctl(update, `${newPassword}\n`);
    failed(refused, 7, /^invalid_upstream:\n {2}db_user: /);
    assert.ok(!refused.stderr.includes(newPassword));
    await sharedPostgres().admin.query(sql.typeAlias("void")`ALTER ROLE ${sql.identifier([role])} PASSWORD ${sql.literalValue(newPassword)}`);
    try {
      assert.equal(ok(await qodctl(update, `${newPassword}\n`)).stdout, `Credentials of ${p}_managed's manager updated.\n`);
    } finally {
      await sharedPostgres().admin.query(sql.typeAlias("void")`ALTER ROLE ${sql.identifier([role])} PASSWORD ${sql.literalValue(rolePassword)}`);
    }
    failed(await qodctl(update), 2, /^error: expected the manager's new password on line 1 of standard input\n$/);
  });

  it("a bad tenant.json is refused with its field violations (7); a missing file is a usage mistake (2)", async () => {
    failed(await qodctl(["supavisor", "tenant", "put", `${p}_bad`, "-f", tenantFile("bad.json", { db_port: 0 })]), 7, /^invalid_size:\n {2}tenant\.db_port: /);
    failed(await qodctl(["supavisor", "tenant", "put", `${p}_bad`, "-f", path.join(home.dir, "missing.json")]), 2, /^error: /);
  });
});
