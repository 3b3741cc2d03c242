// The README's examples for a newcomer, run as written against `npm start` (embedded Postgres, the
// data plane on, admin/admin): curl with `node` instead of python3, qodctl, users, access tokens
// and an OIDC tenant (Keycloak is a local https issuer standing in for kc.example.com), and the
// DuckLake ATTACH lines, whose every value is checked against what the API answers and used to
// connect as DuckDB would (DuckDB itself cannot be installed here). Only the ports, the issuer's
// address and the data directory differ from the README.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Client } from "pg";
import { loadConfig } from "../src/config";
import { freePort } from "../src/db/embedded";
import { generateSelfSignedCertificate } from "../src/edge/tls";
import { buildCliBundle, cliHome, type CliHome } from "./helpers/cli";
import { blockWith, codeBlocks } from "./helpers/docs";
import { startTestIssuer, type TestIssuer } from "./helpers/issuer";
import { removeServerData, startServerProcess, type ServerProcess } from "./helpers/process";

const README = "README.md";

describe("the README's examples, as written, against npm start", function () {
  this.timeout(180_000);
  let dataDir: string;
  let server: ServerProcess | undefined;
  let issuer: TestIssuer;
  let home: CliHome;
  let grpcPort: number;
  let httpPort: number;
  let embeddedPgPort: number;
  let sessionPort: number;
  let token = "";

  /** The README's text with this run's ports and issuer. */
  const localize = (text: string) => text.replaceAll("localhost:20900", `localhost:${httpPort}`).replaceAll("https://kc.example.com/", `${issuer.base}/`);

  /** Runs a shell block (curl prints a newline after each body; `npx qodctl` runs the clone's bundle); returns stdout. */
  function sh(script: string, options: { env?: Record<string, string>; input?: string; home?: CliHome } = {}): Promise<string> {
    const standIns = [
      `curl() { command curl "$@"; echo; }`,
      `npx() { if [ "$1" = qodctl ]; then shift; node "$QODCTL" "$@"; else command npx "$@"; fi; }`,
    ].join("\n");
    const h = options.home ?? home;
    return new Promise((resolve, reject) => {
      const child = execFile(
        "bash",
        ["-c", `set -eo pipefail\n${standIns}\n${localize(script)}`],
        { cwd: h.dir, env: { ...h.env, QODCTL: buildCliBundle(), QOD_SERVER: `127.0.0.1:${grpcPort}`, ...options.env } },
        (err, stdout, stderr) => (err ? reject(new Error(`${script}\n${stdout}\n${stderr}`)) : resolve(stdout)),
      );
      child.stdin?.end(options.input ?? "");
    });
  }
  /** The JSON bodies a curl block printed, one per line. */
  const bodies = (stdout: string) =>
    stdout
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as Record<string, any>);
  const api = async (route: string) => {
    const res = await fetch(`http://127.0.0.1:${httpPort}${route}`, { headers: { "X-API-Key": token } });
    assert.equal(res.status, 200);
    return (await res.json()) as Record<string, any>;
  };
  /** A DuckDB ATTACH line of the README: its libpq keywords and its DATA_PATH. */
  function attach(user: string): { keywords: Record<string, string>; dataPath: string } {
    const sql = codeBlocks(README).filter((b) => b.lang === "sql").map((b) => b.text).find((text) => text.includes(`user=${user} `));
    const match = /ATTACH 'ducklake:postgres:([^']*)'\s+AS \w+ \(DATA_PATH '([^']*)'\)/.exec(sql ?? "");
    assert.ok(match, `no ATTACH for user ${user}`);
    const keywords = Object.fromEntries([...(match[1] ?? "").matchAll(/(\w+)=(<[^>]*>|\S+)/g)].map((m) => [m[1] ?? "", m[2] ?? ""]));
    return { keywords, dataPath: match[2] ?? "" };
  }
  /** What DuckDB's postgres extension reads first: the catalog's data path, through these libpq settings. */
  async function dataPathVia(settings: { host: string; port: number; user: string; password: string; database: string }): Promise<string> {
    const client = new Client(settings);
    await client.connect();
    try {
      const { rows } = await client.query<{ value: string }>("SELECT value FROM ducklake_metadata WHERE key = 'data_path'");
      return rows[0]?.value ?? "";
    } finally {
      await client.end();
    }
  }

  before(async () => {
    const certificate = await generateSelfSignedCertificate({ hosts: ["127.0.0.1"] });
    issuer = await startTestIssuer({ tls: certificate });
    dataDir = mkdtempSync(path.join(tmpdir(), "qod-readme-"));
    writeFileSync(path.join(dataDir, "issuer-ca.pem"), certificate.cert);
    [grpcPort, httpPort, embeddedPgPort, sessionPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    server = await startServerProcess(
      {
        QOD_DATA_DIR: dataDir,
        QOD_GRPC_PORT: String(grpcPort),
        QOD_HTTP_PORT: String(httpPort),
        QOD_EMBEDDED_PG_PORT: String(embeddedPgPort),
        QOD_EDGE_SESSION_PORT: String(sessionPort),
        // The stand-in for Keycloak is on loopback, with a certificate the service is told to trust.
        QOD_OIDC_ALLOW_INSECURE: "true",
        NODE_EXTRA_CA_CERTS: path.join(dataDir, "issuer-ca.pem"),
      },
      grpcPort,
    );
    home = cliHome();
  });
  after(async () => {
    home?.remove();
    await server?.kill("SIGTERM");
    await removeServerData(dataDir);
    await issuer?.close();
  });

  it("logs in without python3, creates a tenant and a DuckLake database, lists it (curl)", async () => {
    const out = await sh(`${blockWith(README, "TOKEN=$(curl")}\necho "$TOKEN"`);
    token = out.trim().split("\n").at(-1) ?? "";
    assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    const [tenant, database, list] = bodies(out);
    assert.equal(tenant?.name, "acme");
    assert.deepEqual([database?.name, database?.status, database?.defaultSchema], ["acme_sales", "READY", "mart"]);
    assert.deepEqual(list?.tenantDbs.map((d: { name: string }) => d.name), ["acme_sales"]);
  });

  it("does the same with qodctl, whose -o json is the API's JSON", async () => {
    const block = blockWith(README, "npx qodctl login --username admin").replaceAll("acme", "gamma");
    const out = await sh(block, { input: "admin\n" });
    const json = out.trim().split("\n").at(-1) ?? "";
    assert.deepEqual(JSON.parse(json), await api("/api/database/list?tenant=gamma"));
  });

  it("creates a tenant user and her access token, switches the tenant to Keycloak, and exchanges her ID token (curl)", async () => {
    const idToken = await issuer.sign(`${issuer.base}/realms/acme`, { sub: "kc-ann", preferred_username: "ann", aud: "qod" });
    const out = await sh(blockWith(README, "/api/user/create"), { env: { TOKEN: token, ID_TOKEN: idToken } });
    const [user, pat, pats, tenant, exchanged] = bodies(out);
    assert.deepEqual([user?.tenant, user?.username, user?.role], ["acme", "ann", "admin"]);
    assert.match(pat?.token, /^qod_pat_/);
    const days = (Date.parse(pat?.expireTime) - Date.now()) / 86_400_000;
    assert.ok(days > 89.9 && days < 90.1, pat?.expireTime);
    assert.deepEqual(pats?.tokens.map((t: { name: string }) => t.name), ["ci"]);
    assert.deepEqual([tenant?.authProvider, tenant?.authConfig.realm], ["keycloak", "acme"]);
    assert.deepEqual([exchanged?.username, exchanged?.tenant], ["ann", "acme"]);
    assert.match(exchanged?.token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
  });

  it("does the same with qodctl: ann's session from her ID token makes her access token", async () => {
    const created = await fetch(`http://127.0.0.1:${httpPort}/api/tenant/create`, { method: "POST", headers: { "X-API-Key": token }, body: '{"name":"beta"}' });
    assert.equal(created.status, 200);
    writeFileSync(path.join(home.dir, "id-token.jwt"), await issuer.sign(`${issuer.base}/realms/beta`, { preferred_username: "ann", aud: "qod" }));
    const block = blockWith(README, "npx qodctl user create ann").replaceAll("acme", "beta");
    const out = await sh(block);
    assert.match(out, /^ann +beta +admin/m);
    assert.match(out, /\bkeycloak\b/);
    assert.match(out, /\bqod_pat_[\w-]+/, out);
    const who = JSON.parse(await sh("npx qodctl whoami -o json")) as { username: string; tenant: string };
    assert.deepEqual([who.username, who.tenant], ["ann", "beta"]);
  });

  describe("DuckDB: the ATTACH lines", () => {
    it("the catalog's server and data path are what metastore-defaults and the database answer", async () => {
      const out = await sh(blockWith(README, "/api/database/metastore-defaults"), { env: { TOKEN: token } });
      const [defaults, database] = bodies(out);
      assert.deepEqual(defaults, { pgHost: "127.0.0.1", pgPort: String(embeddedPgPort), pgUser: "postgres", schemaName: "main", dataPath: path.join(dataDir, "lake") });
      // The README shows these answers for a QOD_DATA_DIR of /srv/qod/.qod and the default port.
      const shown = blockWith(README, "/api/database/metastore-defaults").replaceAll("/srv/qod/.qod", dataDir).replaceAll("54320", String(embeddedPgPort));
      assert.deepEqual(JSON.parse(/#\s+(\{"pgHost".*\})/.exec(shown)?.[1] ?? ""), defaults);
      assert.equal(loadConfig({}).embeddedPgPort, 54320);
      assert.deepEqual(database?.metastore, { dbName: "acme_sales" });
      assert.equal(database?.effectiveDataPath, path.join(dataDir, "lake", "acme", "sales") + "/");
      assert.match(shown, new RegExp(`"metastore":\\{"dbName":"acme_sales"\\}.*"effectiveDataPath":"${database?.effectiveDataPath}"`));

      const direct = attach("postgres");
      assert.deepEqual(direct.keywords, { dbname: "acme_sales", host: "127.0.0.1", port: "54320", user: "postgres", password: "<the pg-password file>" });
      assert.equal(direct.dataPath.replace("/srv/qod/.qod", dataDir), database?.effectiveDataPath);
      const password = readFileSync(path.join(dataDir, "pg-password"), "utf8").trim();
      const seen = await dataPathVia({ host: direct.keywords.host, port: Number(defaults?.pgPort), user: direct.keywords.user, password, database: direct.keywords.dbname });
      assert.equal(seen, database?.effectiveDataPath);
    });

    it("through a pool: user <pool>.<tenant>, the session port, the password CreatePool printed", async () => {
      const poolHome = cliHome();
      try {
        const out = await sh(`npx qodctl login --username admin\n${blockWith(README, "npx qodctl pool create")}`, { input: "admin\n", home: poolHome });
        const password = /Password \(shown only now\): (\S+)/.exec(out)?.[1];
        assert.ok(password, out);
        const pooled = attach("bi.acme");
        assert.deepEqual(pooled.keywords, { dbname: "acme_sales", host: "127.0.0.1", port: "5432", user: "bi.acme", password: "<the pool password>" });
        assert.equal(loadConfig({}).edge.sessionPort, 5432);
        const database = await api("/api/database/get?tenant=acme&name=sales");
        assert.equal(pooled.dataPath.replace("/srv/qod/.qod", dataDir), database.effectiveDataPath);
        const seen = await dataPathVia({ host: pooled.keywords.host, port: sessionPort, user: pooled.keywords.user, password, database: pooled.keywords.dbname });
        assert.equal(seen, database.effectiveDataPath);
      } finally {
        poolHome.remove();
      }
    });
  });
});
