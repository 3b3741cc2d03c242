// fast-check arbitraries of hostile requests to any method, made from the descriptor: each field
// gets values of its type chosen to hurt (boundary numbers, hostile strings, huge maps, broken
// page tokens, timestamps out of range), and a request may then be broken as JSON (wrong types,
// unknown fields, a body that is no JSON) or as protobuf bytes (wrong wire types, unknown fields,
// truncation, noise). Names come partly from a small pool, so requests also reach existing rows.
import { fromJson, toBinary, ScalarType, type DescField, type DescMessage, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import fc from "fast-check";
import { registry } from "./raw-grpc";

export interface FuzzNames {
  /** Tenants, database suffixes, pools, users that exist (or may) in the suite's state. */
  tenants: readonly string[];
  databases: readonly string[];
  pools: readonly string[];
  users: readonly string[];
  /** Where the shared Postgres listens: a metastore override may name it (and it answers). */
  pgPort: number;
}

const HOSTILE = [
  "",
  " ",
  "\u0000",
  "a\u0000b",
  "\u202eevil",
  "\u2066x\u2069",
  "\u200f",
  "\u001b[31m",
  "line\nbreak",
  "../../etc/passwd",
  "/root/../etc/x.duckdb",
  "s3://bucket/../x",
  "'; DROP TABLE tenants; --",
  "\\",
  "%00",
  "%s%s%n",
  "${jndi:ldap://x}",
  "__proto__",
  "constructor",
  "💥",
  "\ud800",
  "NaN",
  "-1",
  "9".repeat(40),
  "a".repeat(63),
  "a".repeat(64),
  "A".repeat(300),
];

/** A string of ~60k characters: bigger than every field allows, within the body limit. */
const HUGE = "x".repeat(60_000);

function hostileString(pool: readonly string[]): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...pool) },
    { weight: 3, arbitrary: fc.constantFrom(...HOSTILE) },
    { weight: 2, arbitrary: fc.stringMatching(/^[a-z][a-z0-9_]{0,12}$/) },
    { weight: 2, arbitrary: fc.string({ maxLength: 40 }) },
    { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 20 }) },
    { weight: 1, arbitrary: fc.constant(HUGE) },
  );
}

const int32 = fc.oneof(fc.constantFrom(0, -1, 1, 2, 64, 65, 100, 1000, 1001, 2_147_483_647, -2_147_483_648), fc.integer({ min: -2_147_483_648, max: 2_147_483_647 }));

const timestamp = fc.constantFrom("2035-01-01T00:00:00Z", new Date(Date.now() + 86_400_000).toISOString(), "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z", "1970-01-01T00:00:00Z");

/** A page token: none, noise, one of ours for another list, or one whose key no text column can hold. */
function pageToken(pool: readonly string[]): fc.Arbitrary<string> {
  const token = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return fc.oneof(
    fc.constant(""),
    fc.string({ maxLength: 30 }),
    fc.base64String({ maxLength: 40 }),
    fc.record({ after: hostileString(pool), scope: fc.constantFrom("tenants", "users:", "databases:x", "pools:x", "") }).map(token),
    fc.constant(token({ after: "\u0000", scope: "tenants" })),
    fc.constant(token(["not", "an", "object"])),
  );
}

/** Map entries: the known keys of every map in the protos, hostile keys, and now and then 1000 of them. */
function mapEntries(names: FuzzNames): fc.Arbitrary<Record<string, string>> {
  const key = fc.oneof(
    fc.constantFrom("issuer", "realm", "hd", "tenantId", "userPoolId", "clientId", "pgHost", "pgPort", "pgUser", "pgPassword", "dbName", "schemaName", "endpoint", "key", "secret", "region", "s3_region", "__proto__", "constructor", "\u0000", ""),
    fc.string({ maxLength: 12 }),
  );
  // Values that name the shared server (which answers) or no server, never a host a lookup would wait on.
  const value = fc.oneof(
    fc.constantFrom("https://kc.example.com/realms/x", "x", "127.0.0.1", String(names.pgPort), "postgres", "main", "s3.example.com", "bad host", "70000", "a'b", "a;b"),
    hostileString(names.tenants),
  );
  const huge = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`k${i}`, "v"]));
  return fc.oneof({ weight: 10, arbitrary: fc.dictionary(key, value, { maxKeys: 4 }) }, { weight: 1, arbitrary: fc.constant(huge) });
}

/** Values for a field, by its name where the name says what it holds, else by its type. */
function fieldValue(field: DescField, names: FuzzNames): fc.Arbitrary<JsonValue> | undefined {
  switch (field.fieldKind) {
    case "map":
      return mapEntries(names);
    case "message":
      return field.message.typeName === "google.protobuf.Timestamp" ? timestamp : undefined;
    case "list":
      return undefined;
    case "enum":
      return fc.integer({ min: 0, max: 3 });
    case "scalar":
      break;
  }
  switch (field.scalar) {
    case ScalarType.BOOL:
      return fc.boolean();
    case ScalarType.INT32:
    case ScalarType.INT64:
    case ScalarType.UINT32:
      return int32;
    case ScalarType.STRING:
      break;
    default:
      return undefined;
  }
  switch (field.name) {
    case "tenant":
    case "name":
    case "id":
      return hostileString([...names.tenants, ...names.databases, ...names.pools]);
    case "tenant_db":
      return hostileString(names.databases);
    case "pool":
      return hostileString(names.pools);
    case "username":
      return hostileString(names.users);
    case "kind":
      return hostileString(["", "ducklake", "memory", "duckdb-file", "DuckLake"]);
    case "auth_provider":
      return hostileString(["", "db", "keycloak", "google", "azure", "aws"]);
    case "role":
      return hostileString(["", "admin", "user"]);
    case "page_token":
      return pageToken(names.tenants);
    case "data_path":
      return hostileString(["", "/srv/lake/x", "s3://bucket/lake", "/srv/x.duckdb"]);
    default:
      return hostileString(["", "a good password", "admin", "x"]);
  }
}

/** A proto3 JSON request for `message`: each field present or not. */
export function requestJson(message: DescMessage, names: FuzzNames): fc.Arbitrary<JsonObject> {
  const parts: Record<string, fc.Arbitrary<JsonValue>> = {};
  for (const field of message.fields) {
    const value = fieldValue(field, names);
    if (value) parts[field.jsonName] = value;
  }
  return fc.record(parts, { requiredKeys: [] }) as fc.Arbitrary<JsonObject>;
}

/** How a JSON request is broken before it is sent over REST. */
export type JsonBreak =
  | { kind: "none" }
  | { kind: "wrong_type"; field: number; value: JsonValue }
  | { kind: "unknown_field"; key: string; value: JsonValue }
  | { kind: "not_json"; body: string };

export const jsonBreak: fc.Arbitrary<JsonBreak> = fc.oneof(
  { weight: 6, arbitrary: fc.constant({ kind: "none" as const }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("wrong_type" as const),
      field: fc.nat(),
      value: fc.constantFrom<JsonValue>(null, 1e400 as number, -0, 1.5, 2 ** 53, "12", true, [], {}, ["x"], { a: { b: "c" } }, "NaN"),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("unknown_field" as const), key: fc.constantFrom("unknownField", "__proto__", "constructor", "a".repeat(200)), value: fc.jsonValue({ maxDepth: 2 }).map((v) => v as JsonValue) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("not_json" as const), body: fc.constantFrom("{", "[", "null", '"x"', "{\"a\":}", "\u0000", "{}}", "[1,2", "\ud800") }) },
);

/** How protobuf bytes are broken before they are sent over gRPC. */
export type BytesBreak =
  | { kind: "none" }
  | { kind: "wrong_wire_type"; field: number; value: number }
  | { kind: "unknown_field"; field: number; bytes: Uint8Array }
  | { kind: "truncate"; keep: number }
  | { kind: "noise"; bytes: Uint8Array };

export const bytesBreak: fc.Arbitrary<BytesBreak> = fc.oneof(
  { weight: 6, arbitrary: fc.constant({ kind: "none" as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("wrong_wire_type" as const), field: fc.integer({ min: 1, max: 9 }), value: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("unknown_field" as const), field: fc.integer({ min: 10, max: 536_870_911 }), bytes: fc.uint8Array({ maxLength: 16 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("truncate" as const), keep: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("noise" as const), bytes: fc.uint8Array({ maxLength: 64 }) }) },
);

/** The JSON with its break applied (a body that is no JSON is returned as the raw text). */
export function brokenJson(message: DescMessage, json: JsonObject, broken: JsonBreak): string {
  switch (broken.kind) {
    case "none":
      return JSON.stringify(json);
    case "wrong_type": {
      const field = message.fields[broken.field % Math.max(1, message.fields.length)];
      return JSON.stringify(field ? { ...json, [field.jsonName]: broken.value } : json);
    }
    case "unknown_field":
      // Written by hand so that `__proto__` is a key of the text, as a client would send it.
      return `${JSON.stringify(json).slice(0, -1)}${Object.keys(json).length > 0 ? "," : ""}${JSON.stringify(broken.key)}:${JSON.stringify(broken.value)}}`;
    case "not_json":
      return broken.body;
  }
}

/** The JSON with every string made well-formed (a lone surrogate becomes U+FFFD), as protobuf encodes it. */
const LONE_SURROGATE = /\p{Cs}/gu;
function wellFormed(value: JsonValue): JsonValue {
  if (typeof value === "string") return value.replace(LONE_SURROGATE, "\ufffd");
  if (Array.isArray(value)) return value.map(wellFormed);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k.replace(LONE_SURROGATE, "\ufffd"), wellFormed(v)]));
}

/** The request's bytes with its break applied. */
export function brokenBytes(message: DescMessage, json: JsonObject, broken: BytesBreak): Uint8Array {
  const bytes = toBinary(message, fromJson(message, wellFormed(json), { registry }));
  switch (broken.kind) {
    case "none":
      return bytes;
    case "wrong_wire_type": {
      // A field sent as a varint whatever its type (strings and maps are length-delimited).
      const extra = new BinaryWriter().tag(broken.field, WireType.Varint).uint32(broken.value).finish();
      return Buffer.concat([bytes, extra]);
    }
    case "unknown_field":
      return Buffer.concat([bytes, new BinaryWriter().tag(broken.field, WireType.LengthDelimited).bytes(broken.bytes).finish()]);
    case "truncate":
      return bytes.subarray(0, broken.keep % (bytes.length + 1));
    case "noise":
      return broken.bytes;
  }
}
