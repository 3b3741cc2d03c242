// Request fields as command-line flags: which fields get one, how each kind of field is spelt
// (`--auth-config k=v,k=v`, `--size 2`, `--expire-time 30d`), and how the flags, the positional
// arguments and a `-f` file become one request in the API's JSON.
import { ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";
import { UsageError } from "./usage-error";

type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** How a field is given on the command line. */
export type FlagKind = "boolean" | "integer" | "int64" | "number" | "text" | "enum" | "map" | "list" | "time";

const TIMESTAMP = "google.protobuf.Timestamp";

const INTEGER_SCALARS = new Set([ScalarType.INT32, ScalarType.UINT32, ScalarType.SINT32, ScalarType.FIXED32, ScalarType.SFIXED32]);
const INT64_SCALARS = new Set([ScalarType.INT64, ScalarType.UINT64, ScalarType.SINT64, ScalarType.FIXED64, ScalarType.SFIXED64]);

function scalarKind(scalar: ScalarType): FlagKind {
  if (scalar === ScalarType.BOOL) return "boolean";
  if (INTEGER_SCALARS.has(scalar)) return "integer";
  if (INT64_SCALARS.has(scalar)) return "int64";
  if (scalar === ScalarType.FLOAT || scalar === ScalarType.DOUBLE) return "number";
  return "text"; // string, and bytes as base64 text (as in the JSON)
}

/** The flag kind of a field, or undefined for fields only `-f` can set (nested messages, lists of them). */
export function flagKind(field: DescField): FlagKind | undefined {
  switch (field.fieldKind) {
    case "scalar":
      return scalarKind(field.scalar);
    case "enum":
      return "enum";
    case "map":
      return field.mapKey === ScalarType.STRING && field.mapKind === "scalar" ? "map" : undefined;
    case "list":
      return field.listKind === "scalar" ? "list" : undefined;
    case "message":
      return field.message.typeName === TIMESTAMP ? "time" : undefined;
  }
}

/** `displayName` → `display-name`. */
/** A flag name from a JSON name: lowerCamelCase (QOD) or snake_case (Supavisor) to kebab-case. */
export const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`).replaceAll("_", "-");

/** The placeholder a flag's help shows. */
export function placeholder(kind: FlagKind): string {
  switch (kind) {
    case "integer":
    case "int64":
    case "number":
      return "<n>";
    case "map":
      return "<key=value,...>";
    case "time":
      return "<time>";
    case "enum":
      return "<value>";
    default:
      return "<text>";
  }
}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `500ms`, `30s`, `5m`, `2h`, `30d` in milliseconds; a bare number is seconds when `bareSeconds`. */
export function parseDuration(text: string, bareSeconds: boolean): number | undefined {
  const match = DURATION.exec(text) ?? (bareSeconds && /^\d+(?:\.\d+)?$/.test(text) ? [text, text, "s"] : null);
  if (!match) return undefined;
  const ms = Number(match[1]) * UNIT_MS[match[2]];
  return Number.isFinite(ms) ? ms : undefined;
}

/** Splits `k=v,k2=v2` where a comma starts a new pair only before `key=`, so values may hold commas. */
function parsePairs(flag: string, text: string): Record<string, string> {
  const pairs: Record<string, string> = {};
  for (const part of text.split(/,(?=[^,=]+=)/)) {
    const eq = part.indexOf("=");
    // The text is not repeated: a map may hold a password.
    if (eq <= 0) throw new UsageError(`${flag}: expected key=value pairs separated by commas`);
    pairs[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return pairs;
}

function scalarValue(flag: string, kind: FlagKind, text: string): JsonValue {
  switch (kind) {
    case "integer":
      if (!/^[+-]?\d{1,10}$/.test(text)) throw new UsageError(`${flag}: expected an integer, got "${text}"`);
      return Number(text);
    case "int64":
      if (!/^[+-]?\d{1,20}$/.test(text)) throw new UsageError(`${flag}: expected an integer, got "${text}"`);
      return text; // int64 is a string in proto3 JSON
    case "number": {
      const n = Number(text);
      if (text.trim() === "" || !Number.isFinite(n)) throw new UsageError(`${flag}: expected a number, got "${text}"`);
      return n;
    }
    case "time": {
      // A duration means "from now"; anything else must be RFC 3339, which the JSON parsing checks.
      const ms = parseDuration(text, false);
      if (ms === undefined) return text;
      const at = new Date(Date.now() + ms);
      if (Number.isNaN(at.getTime())) throw new UsageError(`${flag}: "${text}" is too far away`);
      return at.toISOString();
    }
    default:
      return text;
  }
}

/** A flag's value (commander gives strings, or an array of them for a repeatable flag) as a list of texts. */
const listValue = (value: unknown): string[] => {
  const text = (item: unknown) => (typeof item === "string" ? item : JSON.stringify(item));
  return Array.isArray(value) ? value.map(text) : value === undefined ? [] : [text(value)];
};

/** The JSON value of a flag as commander parsed it (repeatable flags arrive as arrays). */
export function flagValue(flag: string, field: DescField, kind: FlagKind, value: unknown): JsonValue {
  switch (kind) {
    case "boolean":
      return value === true;
    case "map":
      return Object.assign({}, ...listValue(value).map((text) => parsePairs(flag, text))) as JsonObject;
    case "list": {
      const itemKind = field.fieldKind === "list" && field.listKind === "scalar" ? scalarKind(field.scalar) : "text";
      return listValue(value).map((text) => scalarValue(flag, itemKind, text));
    }
    default:
      return scalarValue(flag, kind, String(value));
  }
}

/** Sets a field in request JSON by its JSON name, dropping a value under its proto name. */
export function setField(request: JsonObject, field: DescField, value: JsonValue): void {
  delete request[field.name];
  request[field.jsonName] = value;
}

export function getField(request: JsonObject, field: DescField): JsonValue | undefined {
  return request[field.jsonName] ?? request[field.name];
}

/** Map flags add to (and override keys of) the map a -f file gives; other flags replace the value. */
export function mergeFlag(request: JsonObject, field: DescField, kind: FlagKind, value: JsonValue): void {
  const existing = getField(request, field);
  if (kind === "map" && typeof existing === "object" && existing !== null && !Array.isArray(existing)) {
    setField(request, field, { ...existing, ...(value as JsonObject) });
  } else {
    setField(request, field, value);
  }
}

/** Finds a request field by JSON name (as the command table names them). */
export function fieldNamed(message: DescMessage, name: string): DescField {
  const field = message.fields.find((f) => f.jsonName === name);
  if (!field) throw new Error(`${message.typeName} has no field "${name}"`);
  return field;
}

/** The -f document: a JSON object, from a file or stdin (`-`). */
export function parseRequestFile(source: string, text: string): JsonObject {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${source}: not valid JSON (${(err as Error).message})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new UsageError(`${source}: expected a JSON object (the request)`);
  return parsed as JsonObject;
}
