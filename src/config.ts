// The only reader of process.env: the environment is parsed once into a frozen, typed Config.
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import path from "node:path";
import { z } from "zod";

const port = z.coerce.number().int().min(0).max(65535);
// A variable set to the empty string is refused before these schemas run (loadConfig), so
// unset is the only way to ask for a default: `QOD_GRPC_PORT=` never means a random port, nor
// `QOD_VAULT_ENC_KEY=` a generated key.
const optionalText = z.string().optional();
const byteLength = (min: number, max = Infinity) => (v: string | undefined) =>
  v === undefined || (Buffer.byteLength(v) >= min && Buffer.byteLength(v) <= max);
/** A comma-separated list; blanks around entries and empty entries are ignored. */
const list = z
  .string()
  .optional()
  .transform((v) => (v ?? "").split(",").map((s) => s.trim()).filter((s) => s !== ""));

/** `address` or `address/prefix` (IPv4 or IPv6), as node's BlockList takes a subnet. */
export interface Cidr {
  address: string;
  prefix: number;
  family: "ipv4" | "ipv6";
}

function parseCidr(entry: string): Cidr | undefined {
  const [address = "", prefixText, extra] = entry.split("/");
  const version = isIP(address);
  if (version === 0 || extra !== undefined) return undefined;
  const max = version === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!(prefix >= 0 && prefix <= max)) return undefined;
  return { address, prefix, family: version === 4 ? "ipv4" : "ipv6" };
}

const cidrs = list.transform((entries, ctx) =>
  entries.map((entry) => {
    const cidr = parseCidr(entry);
    if (!cidr) ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${JSON.stringify(entry)} is not an IP address or CIDR (address/prefix)` });
    return cidr ?? { address: "", prefix: 0, family: "ipv4" as const };
  }),
);

/** `host` or `host:port` entries (IPv6 as `[addr]:port`), compared after lowercasing. */
const hostList = list.transform((entries, ctx) =>
  entries.map((entry) => {
    if (!/^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::\d{1,5})?$/.test(entry)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${JSON.stringify(entry)} is not a host or host:port` });
    }
    return entry.toLowerCase();
  }),
);

const flag = z
  .enum(["true", "false", "1", "0"])
  .optional()
  .transform((v) => v === "true" || v === "1");

const EnvShape = z.object({
  QOD_GRPC_PORT: port.default(50051),
  QOD_HTTP_PORT: port.default(20900),
  // Supavisor's port, serving the same JSON API (so its documented curl lines work); 0 turns it off.
  QOD_SUPAVISOR_HTTP_PORT: port.default(4000),
  QOD_HOST: z.string().min(1).default("127.0.0.1"),
  // Prometheus's /metrics (and the probes) on a port of their own, loopback unless said otherwise; 0 turns it off.
  QOD_METRICS_PORT: port.default(9464),
  QOD_METRICS_HOST: z.string().min(1).default("127.0.0.1"),
  QOD_DATA_DIR: z.string().min(1).default("./.qod"),
  // The embedded Postgres's port on 127.0.0.1, fixed so that DuckLake clients have a stable address; 0: any free port.
  QOD_EMBEDDED_PG_PORT: port.default(54320),
  QOD_PG_URL: optionalText.refine((v) => v === undefined || /^postgres(ql)?:\/\//.test(v), "must be a postgres:// URL"),
  QOD_PG_HOST: optionalText,
  QOD_PG_PORT: port.default(5432),
  QOD_PG_USER: z.string().min(1).default("postgres"),
  QOD_PG_PASSWORD: optionalText,
  QOD_PG_DBNAME: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, "must be a lowercase identifier").default("qod"),
  // How long the start keeps trying to reach an external server (QOD_PG_URL, QOD_PG_HOST); 0: once.
  QOD_PG_CONNECT_TIMEOUT_SEC: z.coerce.number().int().min(0).max(3600).default(30),
  // The calls' pool; provisioning and the reconciler have half as many more for their locks.
  QOD_PG_POOL_SIZE: z.coerce.number().int().min(4).max(200).default(10),
  QOD_API_KEY: optionalText.refine(byteLength(16), "must be at least 16 bytes"),
  QOD_ADMIN_USERNAME: z.string().min(1).max(64).default("admin"),
  // Unset: the bootstrap superuser starts as admin/admin and its password is then left alone (src/auth/seed.ts).
  QOD_ADMIN_PASSWORD: z.string().min(1).max(72).optional(),
  QOD_SESSION_JWT_SECRET: optionalText.refine(byteLength(32), "must be at least 32 bytes"),
  QOD_SESSION_TTL_SEC: z.coerce.number().int().min(60).max(30 * 86400).default(3600),
  QOD_VAULT_ENC_KEY: optionalText.refine(byteLength(32, 32), "must be exactly 32 bytes"),
  // At least 32 bytes, unless QOD_DEV_INSECURE_SECRETS allows Supavisor's development `dev` (below).
  API_JWT_SECRET: optionalText,
  QOD_DEV_INSECURE_SECRETS: flag,
  QOD_DATA_PATH: optionalText,
  QOD_LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  QOD_RECONCILE_INTERVAL_SEC: z.coerce.number().int().min(1).max(86400).default(30),
  QOD_OIDC_ALLOW_INSECURE: flag,
  QOD_LOGIN_MAX_FAILURES: z.coerce.number().int().min(1).max(1000).default(5),
  QOD_LOGIN_WINDOW_SEC: z.coerce.number().int().min(1).max(86400).default(300),
  // bcrypt work factor for new hashes: 11 takes ~140 ms in bcryptjs; tests use 4.
  QOD_BCRYPT_COST: z.coerce.number().int().min(4).max(15).default(11),
  QOD_MAX_BODY_BYTES: z.coerce.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024),
  QOD_SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).max(600_000).default(10_000),
  // The data plane (SPEC §10): the edge on two ports in front of PgBouncer.
  QOD_EDGE: z.enum(["on", "off"]).default("on"),
  QOD_EDGE_HOST: z.string().min(1).default("127.0.0.1"),
  QOD_EDGE_TX_PORT: port.default(6543),
  QOD_EDGE_SESSION_PORT: port.default(5432),
  // Unset: 10,000, or as many as the open file limit holds (two descriptors each).
  QOD_EDGE_MAX_CONNECTIONS: z.coerce.number().int().min(1).max(1_000_000).optional(),
  QOD_PGBOUNCER_BIN: optionalText,
  // Where PgBouncer (and apt-get) are looked for when QOD_PGBOUNCER_BIN is not set.
  PATH: z.string().default("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
  // PEM files; with neither, embedded mode generates a self-signed pair under QOD_DATA_DIR.
  QOD_EDGE_TLS_CERT: optionalText,
  QOD_EDGE_TLS_KEY: optionalText,
  // Tenants GetTenant keeps in memory (src/tenants/cache.ts); 0 turns the cache off.
  QOD_TENANT_CACHE_SIZE: z.coerce.number().int().min(0).max(1_000_000).default(10_000),
  // Peers whose x-forwarded-for is believed (src/call/client-address.ts); none by default.
  QOD_TRUSTED_PROXIES: cidrs,
  // bcrypt work in flight: this many hashes at once, this many more waiting; beyond, rate_limited.
  QOD_BCRYPT_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(2),
  QOD_BCRYPT_QUEUE: z.coerce.number().int().min(0).max(1000).default(8),
  // Servers a tenant admin's metastore override may name (superusers may name any).
  QOD_METASTORE_ALLOWED_HOSTS: hostList,
  // The longest the JSON listener waits for a whole request (headers and body).
  QOD_HTTP_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(1_000).max(600_000).default(30_000),
});

/** Every variable the service reads. */
export const ENV_VARIABLES: readonly string[] = Object.keys(EnvShape.shape);

const EnvSchema = EnvShape.superRefine((e, ctx) => {
  if ((e.QOD_EDGE_TLS_CERT === undefined) !== (e.QOD_EDGE_TLS_KEY === undefined)) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: [e.QOD_EDGE_TLS_CERT ? "QOD_EDGE_TLS_KEY" : "QOD_EDGE_TLS_CERT"], message: "QOD_EDGE_TLS_CERT and QOD_EDGE_TLS_KEY go together" });
  }
  if (e.API_JWT_SECRET !== undefined && !e.QOD_DEV_INSECURE_SECRETS && Buffer.byteLength(e.API_JWT_SECRET) < 32) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ["API_JWT_SECRET"], message: "must be at least 32 bytes (QOD_DEV_INSECURE_SECRETS=true allows a shorter one, for development only)" });
  }
});

/** Connection to the shared Postgres server, either embedded or given. */
export interface PgTarget {
  host: string;
  port: number;
  user: string;
  password: string | undefined;
}

export interface Config {
  grpcPort: number;
  httpPort: number;
  /** 0: no Supavisor listener. */
  supavisorHttpPort: number;
  host: string;
  /** 0: no metrics listener. */
  metricsPort: number;
  metricsHost: string;
  dataDir: string;
  /** The embedded Postgres's port (0: any free one); unused with an external server. */
  embeddedPgPort: number;
  /** Undefined when the embedded Postgres must be started. */
  pg: (PgTarget & { url?: string }) | undefined;
  pgDatabase: string;
  pgConnectTimeoutSec: number;
  pgPoolSize: number;
  apiKey: string | undefined;
  adminUsername: string;
  /** QOD_ADMIN_PASSWORD: when set, the bootstrap superuser's password at every start. */
  adminPassword: string | undefined;
  sessionJwtSecret: string | undefined;
  sessionTtlSec: number;
  vaultEncKey: string | undefined;
  apiJwtSecret: string | undefined;
  /** QOD_DEV_INSECURE_SECRETS: a short API_JWT_SECRET was allowed (a warning is logged at start). */
  devInsecureSecrets: boolean;
  dataPath: string;
  logLevel: z.infer<typeof EnvSchema>["QOD_LOG_LEVEL"];
  reconcileIntervalSec: number;
  oidcAllowInsecure: boolean;
  loginMaxFailures: number;
  loginWindowSec: number;
  bcryptCost: number;
  maxBodyBytes: number;
  shutdownGraceMs: number;
  tenantCacheSize: number;
  /** PATH: where PgBouncer is looked for. */
  searchPath: string;
  edge: {
    enabled: boolean;
    host: string;
    transactionPort: number;
    sessionPort: number;
    /** Unset: the edge fits it to the open file limit (10,000 at most). */
    maxConnections: number | undefined;
    pgbouncerBin: string | undefined;
    /** Paths of the PEM certificate and key clients' TLS is served with. */
    tls: { certFile: string; keyFile: string } | undefined;
  };
  trustedProxies: readonly Cidr[];
  bcryptConcurrency: number;
  bcryptQueue: number;
  metastoreAllowedHosts: readonly string[];
  httpRequestTimeoutMs: number;
}

/** Thrown for a bad environment; the message names each offending variable. */
export class ConfigError extends Error {}

function pgFromUrl(url: string): PgTarget & { url: string } {
  const u = new URL(url);
  return {
    url,
    host: decodeURIComponent(u.hostname) || "127.0.0.1",
    port: u.port ? Number(u.port) : 5432,
    user: decodeURIComponent(u.username) || "postgres",
    password: u.password ? decodeURIComponent(u.password) : undefined,
  };
}

/** Parses the environment. Pure: secrets that are not given stay undefined (see withGeneratedSecrets). */
export function loadConfig(env: NodeJS.ProcessEnv): Readonly<Config> {
  const empty = ENV_VARIABLES.filter((name) => env[name]?.trim() === "");
  const given = Object.fromEntries(Object.entries(env).filter(([name]) => !empty.includes(name)));
  const parsed = EnvSchema.safeParse(given);
  const lines = [
    ...empty.map((name) => `${name}: is set but empty; unset it to use its default, or give it a value`),
    ...(parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`)),
  ];
  if (!parsed.success || lines.length > 0) throw new ConfigError(`invalid configuration:\n  ${lines.join("\n  ")}`);
  const e = parsed.data;
  if (e.QOD_SESSION_JWT_SECRET !== undefined && e.QOD_SESSION_JWT_SECRET === e.API_JWT_SECRET) {
    // One secret for both would let whoever holds API_JWT_SECRET sign sessions, and the reverse.
    throw new ConfigError("invalid configuration:\n  QOD_SESSION_JWT_SECRET and API_JWT_SECRET must differ: each kind of token needs its own secret");
  }
  const dataDir = path.resolve(e.QOD_DATA_DIR);
  const pg = e.QOD_PG_URL
    ? pgFromUrl(e.QOD_PG_URL)
    : e.QOD_PG_HOST
      ? { host: e.QOD_PG_HOST, port: e.QOD_PG_PORT, user: e.QOD_PG_USER, password: e.QOD_PG_PASSWORD }
      : undefined;
  return Object.freeze({
    grpcPort: e.QOD_GRPC_PORT,
    httpPort: e.QOD_HTTP_PORT,
    supavisorHttpPort: e.QOD_SUPAVISOR_HTTP_PORT,
    host: e.QOD_HOST,
    metricsPort: e.QOD_METRICS_PORT,
    metricsHost: e.QOD_METRICS_HOST,
    dataDir,
    embeddedPgPort: e.QOD_EMBEDDED_PG_PORT,
    pg,
    pgDatabase: e.QOD_PG_DBNAME,
    pgConnectTimeoutSec: e.QOD_PG_CONNECT_TIMEOUT_SEC,
    pgPoolSize: e.QOD_PG_POOL_SIZE,
    apiKey: e.QOD_API_KEY,
    adminUsername: e.QOD_ADMIN_USERNAME,
    adminPassword: e.QOD_ADMIN_PASSWORD,
    sessionJwtSecret: e.QOD_SESSION_JWT_SECRET,
    sessionTtlSec: e.QOD_SESSION_TTL_SEC,
    vaultEncKey: e.QOD_VAULT_ENC_KEY,
    apiJwtSecret: e.API_JWT_SECRET,
    devInsecureSecrets: e.QOD_DEV_INSECURE_SECRETS,
    // A filesystem root is made absolute; an object-store root (s3://bucket/lake) is kept as given.
    dataPath: e.QOD_DATA_PATH && /^[a-z0-9]+:\/\//.test(e.QOD_DATA_PATH) ? e.QOD_DATA_PATH.replace(/\/+$/, "") : path.resolve(e.QOD_DATA_PATH ?? path.join(dataDir, "lake")),
    logLevel: e.QOD_LOG_LEVEL,
    reconcileIntervalSec: e.QOD_RECONCILE_INTERVAL_SEC,
    oidcAllowInsecure: e.QOD_OIDC_ALLOW_INSECURE,
    loginMaxFailures: e.QOD_LOGIN_MAX_FAILURES,
    loginWindowSec: e.QOD_LOGIN_WINDOW_SEC,
    bcryptCost: e.QOD_BCRYPT_COST,
    maxBodyBytes: e.QOD_MAX_BODY_BYTES,
    shutdownGraceMs: e.QOD_SHUTDOWN_GRACE_MS,
    tenantCacheSize: e.QOD_TENANT_CACHE_SIZE,
    searchPath: e.PATH,
    edge: {
      enabled: e.QOD_EDGE === "on",
      host: e.QOD_EDGE_HOST,
      transactionPort: e.QOD_EDGE_TX_PORT,
      sessionPort: e.QOD_EDGE_SESSION_PORT,
      maxConnections: e.QOD_EDGE_MAX_CONNECTIONS,
      pgbouncerBin: e.QOD_PGBOUNCER_BIN,
      tls: e.QOD_EDGE_TLS_CERT && e.QOD_EDGE_TLS_KEY ? { certFile: path.resolve(e.QOD_EDGE_TLS_CERT), keyFile: path.resolve(e.QOD_EDGE_TLS_KEY) } : undefined,
    },
    trustedProxies: e.QOD_TRUSTED_PROXIES,
    bcryptConcurrency: e.QOD_BCRYPT_CONCURRENCY,
    bcryptQueue: e.QOD_BCRYPT_QUEUE,
    metastoreAllowedHosts: e.QOD_METASTORE_ALLOWED_HOSTS,
    httpRequestTimeoutMs: e.QOD_HTTP_REQUEST_TIMEOUT_MS,
  });
}

const GeneratedSecrets = z.object({ sessionJwtSecret: z.string().min(32), vaultEncKey: z.string().length(32) });

/**
 * Fills the secrets the environment did not give with values generated once and kept in
 * `${dataDir}/secrets.json` (mode 0600), so restarts keep sessions and ciphertexts readable.
 */
export function withGeneratedSecrets(config: Readonly<Config>): Readonly<Config> {
  if (config.sessionJwtSecret && config.vaultEncKey) return config;
  const file = path.join(config.dataDir, "secrets.json");
  const read = (): z.infer<typeof GeneratedSecrets> | undefined => {
    try {
      return GeneratedSecrets.parse(JSON.parse(readFileSync(file, "utf8")));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw new ConfigError(`${file} is unreadable or malformed; remove it or set QOD_SESSION_JWT_SECRET and QOD_VAULT_ENC_KEY`);
    }
  };
  let stored = read();
  if (!stored) {
    const fresh = { sessionJwtSecret: randomBytes(48).toString("base64url"), vaultEncKey: randomBytes(24).toString("base64") };
    mkdirSync(config.dataDir, { recursive: true });
    try {
      writeFileSync(file, JSON.stringify(fresh), { mode: 0o600, flag: "wx" });
      stored = fresh;
    } catch (err) {
      // Another process starting on the same directory wrote it first: use theirs.
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      stored = read() ?? fresh;
    }
  }
  return Object.freeze({
    ...config,
    sessionJwtSecret: config.sessionJwtSecret ?? stored.sessionJwtSecret,
    vaultEncKey: config.vaultEncKey ?? stored.vaultEncKey,
  });
}
