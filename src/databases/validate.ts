// Turns DatabaseService requests into commands, or field violations (SPEC §6, §7). Pure: no I/O.
import path from "node:path";
import type { CreateDatabaseRequest, DeleteDatabaseRequest, UpdateDatabaseRequest } from "../../gen/qod/v1/database";
import { isRequestId } from "../call/metadata";
import { databaseName, IDENTIFIER_PATTERN, isOneOf, Violations, type DatabaseName } from "../validation";
import { normalizeDataPath } from "./ducklake";
import { CREATABLE_KINDS, type Kind } from "./rows";
import { isSecretKey, splitSecrets, type Secrets } from "./vault";

/** The metastore settings a database may override, by their lowercased spelling. */
const METASTORE_KEYS: Record<string, string> = Object.fromEntries(
  ["pgHost", "pgPort", "pgUser", "pgPassword", "dbName", "schemaName"].map((k) => [k.toLowerCase(), k]),
);
/** The keys that name the server; they cannot change once a catalog was made there. */
const SERVER_KEYS = ["pgHost", "pgPort"] as const;
/** The seed's generic object-store keys, and the DuckDB secret parameters of each store. */
const OBJECT_STORE_KEY = /^(?:endpoint|key|secret|region|(?:s3|gcs|azure)_[a-z0-9_]{1,60})$/;
const DATA_PATH_SCHEMES = ["s3", "s3a", "r2", "gs", "az", "azure", "abfss"];
const HOST = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,252}$/;
const PG_USER = /^[A-Za-z_][A-Za-z0-9_.@-]{0,62}$/;
/** Quotes, semicolons, backslashes and control characters could break out of the ATTACH strings and secrets nodes build from these values. */
const UNSAFE = /['";\\\p{Cc}]/u;
const MAX_VALUE = 1024;

export interface CreateDatabaseCommand {
  tenant: string;
  name: DatabaseName;
  kind: Kind;
  /** As requested, or empty when derived. */
  dataPath: string;
  effectiveDataPath: string;
  /** Plain metastore entries, with dbName set to the full name (ducklake only). */
  metastore: Record<string, string>;
  objectStore: Record<string, string>;
  secrets: Secrets;
  defaultDatabase: string;
  defaultSchema: string;
  requestId: string | null;
}

export interface DatabaseRef {
  tenant: string;
  name: DatabaseName;
}

/** A database's changeable settings, secrets included (in the clear, in memory only). */
export interface Settings {
  metastore: Record<string, string>;
  objectStore: Record<string, string>;
  secrets: Secrets;
  defaultDatabase: string;
  defaultSchema: string;
}

/** The canonical spelling of a metastore key (`pghost` → `pgHost`), or undefined for an unknown key. */
export function canonicalMetastoreKey(key: string): string | undefined {
  return METASTORE_KEYS[key.toLowerCase()];
}

/** Checks one non-empty metastore entry; `key` is canonical. */
function checkMetastoreValue(v: Violations, field: string, key: string, value: string, fullName: string): void {
  const bad = (description: string) => v.add(field, "invalid_metastore", description);
  switch (key) {
    case "pgHost":
      if (!HOST.test(value)) bad("must be a host name or an IP address");
      break;
    case "pgPort": {
      const port = /^\d{1,5}$/.test(value) ? Number(value) : NaN;
      if (!(port >= 1 && port <= 65535)) bad("must be a number from 1 to 65535");
      break;
    }
    case "pgUser":
      if (!PG_USER.test(value)) bad("must be a user name of letters, digits and _ . @ -, at most 63 of them");
      break;
    case "pgPassword":
      if (UNSAFE.test(value) || value.length > MAX_VALUE) {
        bad(`must hold no quotes, semicolons, backslashes or control characters, and at most ${MAX_VALUE} characters`);
      }
      break;
    case "dbName":
      if (value !== fullName) bad(`is always the database's full name, ${fullName}`);
      break;
    case "schemaName":
      if (!IDENTIFIER_PATTERN.test(value)) bad("must be an identifier: a letter or _, then letters, digits or _, at most 63 in all");
      break;
  }
}

/** Validates metastore entries (canonicalising their keys); empty values are kept as "remove". */
function metastoreEntries(v: Violations, kind: Kind, entries: Record<string, string>, fullName: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [given, raw] of Object.entries(entries)) {
    const field = `metastore.${given}`;
    const key = canonicalMetastoreKey(given);
    const value = key === "pgPassword" ? raw : raw.trim();
    if (kind !== "ducklake") v.add(field, "invalid_metastore", `a ${kind} database has no metastore`);
    else if (!key) v.add(field, "invalid_metastore", `is not a metastore setting (${Object.values(METASTORE_KEYS).join(", ")})`);
    else {
      if (value !== "") checkMetastoreValue(v, field, key, value, fullName);
      out[key] = value;
    }
  }
  return out;
}

/** Validates object-store entries (lowercasing their keys); empty values are kept as "remove". */
function objectStoreEntries(v: Violations, kind: Kind, entries: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [given, raw] of Object.entries(entries)) {
    const field = `object_store.${given}`;
    const key = given.trim().toLowerCase();
    const value = raw.trim();
    if (kind === "memory") v.add(field, "invalid_object_store", "a memory database has no data to store");
    else if (!OBJECT_STORE_KEY.test(key)) v.add(field, "invalid_object_store", "is not an object-store setting (endpoint, key, secret, region, or an s3_, gcs_ or azure_ key)");
    else if (UNSAFE.test(value) || value.length > MAX_VALUE) {
      v.add(field, "invalid_object_store", `must hold no quotes, semicolons, backslashes or control characters, and at most ${MAX_VALUE} characters`);
    } else out[key] = value;
  }
  return out;
}

/** Where data paths may point (hole 5 of issue 11). */
export interface DataPathRules {
  /** QOD_DATA_DIR: it holds secrets.json and the embedded Postgres, so no data path lies in it (but for the lake root below). */
  dataDir: string;
  /** QOD_DATA_PATH: the root of derived data paths; a tenant's own root is `${dataRoot}/${tenant}/`. */
  dataRoot: string;
  /** Whether the caller may name any filesystem path (superusers) rather than only under its tenant's root. */
  anywhere: boolean;
}

/** Whether `child` (normalised) is `parent` or lies under it. */
const within = (child: string, parent: string) => child === parent || child.startsWith(`${parent.replace(/\/+$/, "")}/`);

/**
 * A filesystem path (absolute) or an object-store URI, free of characters that could escape a
 * quoted string; returned normalised. `..` segments are refused before normalising, anywhere. A
 * filesystem path never lies in the data directory (except under the lake root, when that is
 * inside it), and a tenant admin's lies under its tenant's root. An object-store URI is open to
 * everyone: access to it is by the caller's own credentials.
 */
function checkDataPath(v: Violations, kind: Kind, dataPath: string, tenant: string, rules: DataPathRules): string {
  const bad = (description: string) => {
    v.add("data_path", "invalid_data_path", description);
    return dataPath;
  };
  if (kind === "memory") return dataPath === "" ? dataPath : bad("must be empty: a memory database stores no data");
  if (dataPath === "") return kind === "duckdb-file" ? bad("is required: the path of the .duckdb file") : dataPath;
  if (UNSAFE.test(dataPath) || dataPath.length > MAX_VALUE) {
    return bad(`must hold no quotes, semicolons, backslashes or control characters, and at most ${MAX_VALUE} characters`);
  }
  const uri = /^([a-z0-9]+):\/\/(.*)$/.exec(dataPath);
  const location = uri ? (uri[2] ?? "") : dataPath;
  if (location.split("/").includes("..")) return bad("must not hold a .. segment");
  if (kind === "duckdb-file" && !dataPath.endsWith(".duckdb")) bad("must be the path of a .duckdb file");
  if (uri) {
    if (!DATA_PATH_SCHEMES.includes(uri[1] ?? "")) return bad(`must be a filesystem path or a ${DATA_PATH_SCHEMES.map((s) => `${s}://`).join(", ")} URI`);
    if (!/^[^/]+/.test(location)) return bad("must name a bucket or container after the scheme");
    return `${uri[1]}://${path.posix.normalize(location)}`;
  }
  if (!dataPath.startsWith("/")) return bad("must be an absolute filesystem path or an object-store URI");
  const normalized = path.posix.normalize(dataPath);
  const lakeRoot = /^[a-z0-9]+:\/\//.test(rules.dataRoot) ? undefined : rules.dataRoot;
  if (within(normalized, rules.dataDir) && !(lakeRoot && within(normalized, lakeRoot) && normalized !== lakeRoot)) {
    return bad("must not lie in the service's data directory");
  }
  if (!rules.anywhere) {
    if (!lakeRoot) return bad("must be an object-store URI");
    const tenantRoot = `${lakeRoot}/${tenant}`;
    if (!within(normalized, tenantRoot)) return bad(`must lie under ${tenantRoot}/ or be an object-store URI`);
  }
  return normalized;
}

/** The identifier fields of a database, each with its own reason. */
const IDENTIFIER_FIELDS = { default_database: "invalid_default_database", default_schema: "invalid_default_schema" } as const;

function checkIdentifier(v: Violations, field: keyof typeof IDENTIFIER_FIELDS, value: string): void {
  if (value !== "" && !IDENTIFIER_PATTERN.test(value)) {
    v.add(field, IDENTIFIER_FIELDS[field], "must be an identifier: a letter or _, then letters, digits or _, at most 63 in all");
  }
}

/** defaultSchema must differ from the catalog's name, or two-part names would be ambiguous in DuckDB. */
function checkDefaultSchema(v: Violations, defaultSchema: string, fullName: string): void {
  checkIdentifier(v, "default_schema", defaultSchema);
  if (defaultSchema !== "" && defaultSchema.toLowerCase() === fullName) v.add("default_schema", "invalid_default_schema", "must differ from the database name");
}

function withoutEmpty(entries: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(entries).filter(([, value]) => value !== ""));
}

/** `requestId` from the body, else the `idempotency-key` header (which the REST gateway forwards). */
function checkRequestId(v: Violations, fromBody: string, fromHeader: string | undefined): string | null {
  const body = fromBody.trim();
  const header = fromHeader?.trim() ?? "";
  if (body !== "" && header !== "" && body !== header) v.add("request_id", "invalid_request_id", "differs from the Idempotency-Key header");
  const requestId = body || header;
  if (requestId === "") return null;
  if (!isRequestId(requestId)) v.add("request_id", "invalid_request_id", "must be 1 to 128 letters, digits or . _ : -");
  return requestId;
}

/**
 * `rules.dataRoot` is QOD_DATA_PATH: a ducklake database without a dataPath keeps its data in
 * `<root>/<tenant>/<name>/`, inside its tenant's own root (`<root>/<tenant>/`, the only place a
 * tenant admin may name), so no tenant's root holds another's data (with `<root>/<tenant>_<name>`,
 * tenant `a_b`'s root was tenant `a`'s database `b`).
 */
export function validateCreateDatabase(request: CreateDatabaseRequest, idempotencyKey: string | undefined, rules: DataPathRules): CreateDatabaseCommand {
  const v = new Violations();
  const tenant = v.name("tenant", request.tenant, "invalid_id");
  const name = databaseName(v, "name", tenant, request.name);
  const kind = request.kind.trim().toLowerCase() || "ducklake";
  const defaultDatabase = request.defaultDatabase.trim();
  const defaultSchema = request.defaultSchema.trim();
  checkIdentifier(v, "default_database", defaultDatabase);
  checkDefaultSchema(v, defaultSchema, name.full);
  const requestId = checkRequestId(v, request.requestId, idempotencyKey);
  // The remaining checks depend on the kind.
  if (!isOneOf(CREATABLE_KINDS, kind)) throw v.add("kind", "invalid_kind", `must be one of ${CREATABLE_KINDS.join(", ")}`).error();
  const k: Kind = kind;
  const normalizedPath = checkDataPath(v, k, request.dataPath.trim(), tenant, rules);
  const metastore = splitSecrets(withoutEmpty(metastoreEntries(v, k, request.metastore, name.full)));
  const objectStore = splitSecrets(withoutEmpty(objectStoreEntries(v, k, request.objectStore)));
  v.throwIfAny();
  return {
    tenant,
    name,
    kind: k,
    dataPath: normalizedPath,
    effectiveDataPath:
      k === "ducklake" ? normalizeDataPath(normalizedPath || `${rules.dataRoot}/${tenant}/${name.suffix}`) : k === "duckdb-file" ? normalizedPath : "",
    metastore: k === "ducklake" ? { ...metastore.plain, dbName: name.full } : {},
    objectStore: objectStore.plain,
    secrets: { metastore: metastore.secret, objectStore: objectStore.secret },
    defaultDatabase,
    defaultSchema,
    requestId,
  };
}

export function validateDatabaseRef(request: { tenant: string; name: string }): DatabaseRef {
  const v = new Violations();
  const tenant = v.name("tenant", request.tenant, "invalid_id");
  const name = databaseName(v, "name", tenant, request.name);
  v.throwIfAny();
  return { tenant, name };
}

export function validateDeleteDatabase(request: DeleteDatabaseRequest): DatabaseRef & { dropDatabase: boolean } {
  return { ...validateDatabaseRef(request), dropDatabase: request.dropDatabase };
}

export interface UpdateDatabaseCommand extends DatabaseRef {
  /** Entries to set; an empty value removes the key. */
  metastore: Record<string, string>;
  objectStore: Record<string, string>;
  defaultDatabase: string | undefined;
  defaultSchema: string | undefined;
}

/** Checks what can be checked without the stored row; mergeSettings checks the rest. */
export function validateUpdateDatabase(request: UpdateDatabaseRequest): UpdateDatabaseCommand {
  const ref = validateDatabaseRef(request);
  const v = new Violations();
  const defaultDatabase = request.defaultDatabase?.trim();
  const defaultSchema = request.defaultSchema?.trim();
  if (defaultDatabase !== undefined) checkIdentifier(v, "default_database", defaultDatabase);
  if (defaultSchema !== undefined) checkDefaultSchema(v, defaultSchema, ref.name.full);
  v.throwIfAny();
  return { ...ref, metastore: request.metastore, objectStore: request.objectStore, defaultDatabase, defaultSchema };
}

/** Sets or removes (empty value) each entry of `changes` in the plain or the secret map, by the key's kind. */
function mergeEntries(plain: Record<string, string>, secret: Record<string, string>, changes: Record<string, string>) {
  const merged = { plain: { ...plain }, secret: { ...secret } };
  for (const [key, value] of Object.entries(changes)) {
    const target = isSecretKey(key) ? merged.secret : merged.plain;
    if (value === "") delete target[key];
    else target[key] = value;
  }
  return merged;
}

/**
 * The settings after an update: map entries merged (an empty value removes the key, an omitted
 * secret is kept), defaults replaced when given. Throws field violations for what the kind forbids.
 */
export function mergeSettings(current: Settings, kind: Kind, command: UpdateDatabaseCommand): Settings {
  const v = new Violations();
  const fullName = command.name.full;
  const metastore = mergeEntries(current.metastore, current.secrets.metastore, metastoreEntries(v, kind, command.metastore, fullName));
  const objectStore = mergeEntries(current.objectStore, current.secrets.objectStore, objectStoreEntries(v, kind, command.objectStore));
  for (const key of SERVER_KEYS) {
    if ((metastore.plain[key] ?? "") !== (current.metastore[key] ?? "")) {
      v.add(`metastore.${key}`, "invalid_metastore", "cannot change: the catalog lives on the server the database was created on");
    }
  }
  v.throwIfAny();
  return {
    metastore: kind === "ducklake" ? { ...metastore.plain, dbName: fullName } : metastore.plain,
    objectStore: objectStore.plain,
    secrets: { metastore: metastore.secret, objectStore: objectStore.secret },
    defaultDatabase: command.defaultDatabase ?? current.defaultDatabase,
    defaultSchema: command.defaultSchema ?? current.defaultSchema,
  };
}
