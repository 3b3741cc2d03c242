import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { ConfigError, ENV_VARIABLES, loadConfig, withGeneratedSecrets } from "../src/config";

/** Every variable the service reads: the README's configuration table, and PATH (where PgBouncer is looked for). */
const VARIABLES = [
  "QOD_GRPC_PORT", "QOD_HTTP_PORT", "QOD_SUPAVISOR_HTTP_PORT", "QOD_HOST", "QOD_DATA_DIR", "QOD_EMBEDDED_PG_PORT",
  "QOD_PG_URL", "QOD_PG_HOST", "QOD_PG_PORT", "QOD_PG_USER", "QOD_PG_PASSWORD", "QOD_PG_DBNAME", "QOD_PG_CONNECT_TIMEOUT_SEC", "QOD_PG_POOL_SIZE",
  "QOD_API_KEY", "QOD_ADMIN_USERNAME", "QOD_ADMIN_PASSWORD", "QOD_SESSION_JWT_SECRET", "QOD_SESSION_TTL_SEC",
  "QOD_VAULT_ENC_KEY", "API_JWT_SECRET", "QOD_DEV_INSECURE_SECRETS", "QOD_DATA_PATH", "QOD_LOG_LEVEL",
  "QOD_RECONCILE_INTERVAL_SEC", "QOD_LOGIN_MAX_FAILURES", "QOD_LOGIN_WINDOW_SEC", "QOD_BCRYPT_COST",
  "QOD_OIDC_ALLOW_INSECURE", "QOD_MAX_BODY_BYTES", "QOD_SHUTDOWN_GRACE_MS", "QOD_TENANT_CACHE_SIZE",
  "QOD_EDGE", "QOD_EDGE_HOST", "QOD_EDGE_TX_PORT", "QOD_EDGE_SESSION_PORT", "QOD_EDGE_MAX_CONNECTIONS",
  "QOD_EDGE_TLS_CERT", "QOD_EDGE_TLS_KEY", "QOD_PGBOUNCER_BIN", "PATH",
  "QOD_TRUSTED_PROXIES", "QOD_BCRYPT_CONCURRENCY", "QOD_BCRYPT_QUEUE", "QOD_METASTORE_ALLOWED_HOSTS", "QOD_HTTP_REQUEST_TIMEOUT_MS",
  "QOD_METRICS_PORT", "QOD_METRICS_HOST",
];

describe("configuration", () => {
  it("has the documented defaults", () => {
    const config = loadConfig({});
    assert.equal(config.grpcPort, 50051);
    assert.equal(config.httpPort, 20900);
    assert.equal(config.host, "127.0.0.1");
    assert.equal(config.pgDatabase, "qod");
    assert.equal(config.pg, undefined, "embedded Postgres by default");
    assert.equal(config.adminUsername, "admin");
    assert.equal(config.adminPassword, undefined, "admin/admin at the first start, then left alone");
    assert.equal(config.dataDir, path.resolve(".qod"));
    assert.equal(config.embeddedPgPort, 54320);
    assert.ok(Object.isFrozen(config));
  });

  it("reads a Postgres URL, or host/port/user/password", () => {
    const fromUrl = loadConfig({ QOD_PG_URL: "postgres://u%40x:p%3Aw@db.example:6000/ignored" });
    assert.deepEqual(fromUrl.pg && { host: fromUrl.pg.host, port: fromUrl.pg.port, user: fromUrl.pg.user, password: fromUrl.pg.password }, {
      host: "db.example",
      port: 6000,
      user: "u@x",
      password: "p:w",
    });
    const fromParts = loadConfig({ QOD_PG_HOST: "h", QOD_PG_PORT: "6001", QOD_PG_USER: "u", QOD_PG_PASSWORD: "p" });
    assert.deepEqual(fromParts.pg, { host: "h", port: 6001, user: "u", password: "p" });
  });

  const bad: [string, Record<string, string>][] = [
    ["QOD_GRPC_PORT", { QOD_GRPC_PORT: "70000" }],
    ["QOD_HTTP_PORT", { QOD_HTTP_PORT: "http" }],
    ["QOD_VAULT_ENC_KEY", { QOD_VAULT_ENC_KEY: "too-short" }],
    ["QOD_VAULT_ENC_KEY", { QOD_VAULT_ENC_KEY: "x".repeat(33) }],
    ["QOD_SESSION_JWT_SECRET", { QOD_SESSION_JWT_SECRET: "short" }],
    ["API_JWT_SECRET", { API_JWT_SECRET: "short" }],
    ["QOD_PG_URL", { QOD_PG_URL: "mysql://x" }],
    ["QOD_LOG_LEVEL", { QOD_LOG_LEVEL: "loud" }],
    ["QOD_SESSION_TTL_SEC", { QOD_SESSION_TTL_SEC: "-1" }],
    ["QOD_PG_DBNAME", { QOD_PG_DBNAME: "qod; drop" }],
  ];
  for (const [variable, env] of bad) {
    it(`stops with a message naming ${variable} for ${JSON.stringify(Object.values(env)[0])}`, () => {
      assert.throws(() => loadConfig(env), (err: unknown) => err instanceof ConfigError && err.message.includes(variable));
    });
  }

  describe("an empty value is an error naming the variable, never its default", () => {
    it("covers every variable the service reads", () => {
      assert.deepEqual([...ENV_VARIABLES].sort(), [...VARIABLES].sort());
    });
    for (const variable of VARIABLES) {
      it(`${variable}=`, () => {
        for (const value of ["", "  "]) {
          assert.throws(
            () => loadConfig({ [variable]: value }),
            (err: unknown) => err instanceof ConfigError && err.message.includes(`${variable}: is set but empty; unset it to use its default, or give it a value`),
            JSON.stringify(value),
          );
        }
      });
    }
    it("names every empty variable at once, with the other mistakes", () => {
      assert.throws(
        () => loadConfig({ QOD_GRPC_PORT: "", QOD_VAULT_ENC_KEY: "", QOD_HTTP_PORT: "http" }),
        (err: unknown) => err instanceof ConfigError && /QOD_GRPC_PORT: is set but empty/.test(err.message) && /QOD_VAULT_ENC_KEY: is set but empty/.test(err.message) && /QOD_HTTP_PORT: /.test(err.message),
      );
    });
  });

  it("generates missing secrets once, keeps them private under QOD_DATA_DIR, and reuses them", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "qod-config-"));
    try {
      const first = withGeneratedSecrets(loadConfig({ QOD_DATA_DIR: dir }));
      assert.equal(Buffer.byteLength(first.vaultEncKey ?? ""), 32);
      assert.ok(Buffer.byteLength(first.sessionJwtSecret ?? "") >= 32);
      const file = path.join(dir, "secrets.json");
      assert.equal(statSync(file).mode & 0o777, 0o600);
      const second = withGeneratedSecrets(loadConfig({ QOD_DATA_DIR: dir }));
      assert.equal(second.vaultEncKey, first.vaultEncKey);
      assert.equal(second.sessionJwtSecret, first.sessionJwtSecret);
      const given = withGeneratedSecrets(loadConfig({ QOD_DATA_DIR: dir, QOD_VAULT_ENC_KEY: "k".repeat(32) }));
      assert.equal(given.vaultEncKey, "k".repeat(32), "the environment wins");
      assert.ok(readFileSync(file, "utf8").includes(first.vaultEncKey ?? "?"));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
