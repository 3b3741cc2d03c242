// JSON ↔ protobuf binary for routed calls, with Envoy's transcoder semantics: the body and the
// bindings are woven into one request (the body wins a collision, repeated fields collect
// both), responses are printed with the print options envoy.yaml configures, and a failed
// call's google.rpc.Status becomes the `convert_grpc_status` body.
import {
  create,
  createFileRegistry,
  fromBinary,
  fromJson,
  ScalarType,
  toBinary,
  toJson,
  type DescField,
  type DescMessage,
  type FileRegistry,
  type JsonObject,
  type JsonValue,
  type Registry,
} from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { LocalReply } from "./http-status";
import type { Binding, Route } from "./routes";

/**
 * The transcoder's JSON print options, in Envoy's names. envoy.yaml sets the same values
 * (test/envoy-config.test.ts compares them), so both print identical JSON.
 */
export const PRINT_OPTIONS = {
  add_whitespace: false,
  always_print_primitive_fields: true,
  always_print_enums_as_ints: false,
  preserve_proto_field_names: false,
} as const;

export function loadRegistry(descriptor: Uint8Array): FileRegistry {
  return createFileRegistry(fromBinary(FileDescriptorSetSchema, descriptor));
}

export interface Transcoder {
  /** The request message for a routed call; throws LocalReply 400 for a body it cannot decode. */
  request(route: Route, bindings: readonly Binding[], body: Buffer): Uint8Array;
  /** The JSON response body; throws LocalReply 502 for an undecodable response, as Envoy does. */
  response(route: Route, bytes: Uint8Array): string;
  /** The google.rpc.Status JSON of a failed call: `grpc-status-details-bin` if given, else code and message. */
  status(details: Uint8Array | undefined, code: number, message: string): string;
}

const isObject = (v: JsonValue | undefined): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);

/** The key under which the body holds a field, by either of its JSON names. */
const keyOf = (object: JsonObject, field: DescField) =>
  Object.hasOwn(object, field.jsonName) ? field.jsonName : Object.hasOwn(object, field.name) ? field.name : undefined;

/** A bound string as the JSON value proto3 parsing expects (bindings are text; bools and enum numbers are not). */
function bindingValue(field: DescField, text: string): JsonValue {
  const scalar = field.fieldKind === "scalar" ? field.scalar : field.fieldKind === "list" && field.listKind === "scalar" ? field.scalar : undefined;
  if (scalar === ScalarType.BOOL && (text === "true" || text === "false")) return text === "true";
  const isEnum = field.fieldKind === "enum" || (field.fieldKind === "list" && field.listKind === "enum");
  if (isEnum && /^-?\d+$/.test(text)) return Number(text);
  return text;
}

/** Weaves a binding into the request JSON: the body wins for singular fields, lists collect both. */
function bind(request: JsonValue, { fields, value }: Binding): void {
  let object = request;
  for (const field of fields.slice(0, -1)) {
    if (!isObject(object)) return; // the body is not an object: parsing reports that
    const key = keyOf(object, field) ?? field.jsonName;
    if (object[key] === undefined || object[key] === null) object[key] = {};
    object = object[key];
  }
  if (!isObject(object)) return;
  const leaf = fields.at(-1)!;
  const key = keyOf(object, leaf);
  const existing = key === undefined ? undefined : object[key];
  if (existing === undefined || existing === null) {
    object[key ?? leaf.jsonName] = leaf.fieldKind === "list" ? [bindingValue(leaf, value)] : bindingValue(leaf, value);
  } else if (leaf.fieldKind === "list" && Array.isArray(existing)) {
    existing.push(bindingValue(leaf, value));
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Why a body is not JSON, saying where and never what: the parser's own messages quote the text
 * around the error, which may be a password.
 */
function jsonFailure(err: Error): string {
  const position = /at position (\d+)/.exec(err.message)?.[1];
  if (position !== undefined) return `invalid JSON body: a syntax error at byte ${position}`;
  if (/end of JSON input/.test(err.message)) return "invalid JSON body: it ends early";
  return "invalid JSON body";
}

function parseBody(body: Buffer): JsonValue {
  // No body at all is an empty object, as in Envoy (GETs and bodiless POSTs work).
  if (body.length === 0) return {};
  try {
    return JSON.parse(utf8.decode(body)) as JsonValue;
  } catch (err) {
    throw new LocalReply(400, err instanceof TypeError ? "request body is not valid UTF-8" : jsonFailure(err as Error));
  }
}

const BOOL_TEXT: Readonly<Record<string, boolean>> = { true: true, false: false };

/**
 * Envoy's JSON parser (protobuf's C++ one) also takes a bool as the string "true" or "false"
 * (Supavisor's clients send `"banned": "true"`); @bufbuild/protobuf takes only JSON booleans, so
 * such strings are turned into booleans first, wherever a bool field is (nested, listed, mapped).
 */
function booleanStrings(message: DescMessage, json: JsonValue): void {
  if (!isObject(json)) return;
  const convert = (value: JsonValue | undefined): JsonValue | undefined =>
    typeof value === "string" && Object.hasOwn(BOOL_TEXT, value) ? BOOL_TEXT[value] : value;
  for (const field of message.fields) {
    const key = keyOf(json, field);
    if (key === undefined) continue;
    const value = json[key];
    switch (field.fieldKind) {
      case "scalar":
        if (field.scalar === ScalarType.BOOL) json[key] = convert(value) ?? null;
        break;
      case "message":
        booleanStrings(field.message, value ?? null);
        break;
      case "list":
        if (!Array.isArray(value)) break;
        if (field.listKind === "scalar" && field.scalar === ScalarType.BOOL) json[key] = value.map((item) => convert(item) ?? null);
        else if (field.listKind === "message") for (const item of value) booleanStrings(field.message, item);
        break;
      case "map":
        if (!isObject(value)) break;
        for (const [k, item] of Object.entries(value)) {
          if (field.mapKind === "scalar" && field.scalar === ScalarType.BOOL) value[k] = convert(item) ?? null;
          else if (field.mapKind === "message") booleanStrings(field.message, item);
        }
        break;
    }
  }
}

/**
 * Why the JSON does not fit the request message, naming the field (or the unknown key) but not
 * the value: protobuf-es's messages quote the value, which may be a password.
 */
function mappingFailure(err: Error): string {
  const found = /^(cannot decode (?:field|message) [\w.]+ from JSON)(?:: key "(.*)" is unknown$)?/s.exec(err.message);
  if (!found?.[1]) return "the body does not fit the request message";
  const key = found[2];
  return key === undefined ? found[1] : `${found[1]}: key ${JSON.stringify(key.length > 64 ? `${key.slice(0, 63)}…` : key)} is unknown`;
}

/** Envoy's printer (protobuf's) writes an Any's "@type" first; status details are Anys. */
function typeFirst(value: JsonValue): JsonValue {
  if (Array.isArray(value)) return value.map(typeFirst);
  if (!isObject(value)) return value;
  const out: JsonObject = Object.hasOwn(value, "@type") ? { "@type": value["@type"] ?? null } : {};
  for (const [k, v] of Object.entries(value)) out[k] = typeFirst(v);
  return out;
}

export function createTranscoder(registry: Registry): Transcoder {
  const writeOptions = {
    registry,
    alwaysEmitImplicit: PRINT_OPTIONS.always_print_primitive_fields,
    enumAsInteger: PRINT_OPTIONS.always_print_enums_as_ints,
    useProtoFieldName: PRINT_OPTIONS.preserve_proto_field_names,
  };
  const StatusSchema = registry.getMessage("google.rpc.Status");
  if (!StatusSchema) throw new Error("the descriptor set lacks google/rpc/status.proto");
  const print = (schema: DescMessage, bytes: Uint8Array) => toJson(schema, fromBinary(schema, bytes), writeOptions);
  const key = (field: DescField) => (PRINT_OPTIONS.preserve_proto_field_names ? field.name : field.jsonName);

  return {
    request(route, bindings, body) {
      let json = parseBody(body);
      for (const field of [...route.body].reverse()) json = { [field.jsonName]: json };
      for (const binding of bindings) bind(json, binding);
      booleanStrings(route.method.input, json);
      try {
        return toBinary(route.method.input, fromJson(route.method.input, json, { registry }));
      } catch (err) {
        throw new LocalReply(400, mappingFailure(err as Error));
      }
    },

    response(route, bytes) {
      let json: JsonValue;
      try {
        json = print(route.method.output, bytes);
      } catch {
        throw new LocalReply(502, "the upstream response could not be transcoded");
      }
      for (const field of route.responseBody) json = isObject(json) ? (json[key(field)] ?? null) : null;
      return JSON.stringify(json);
    },

    status(details, code, message) {
      if (details) {
        try {
          return JSON.stringify(typeFirst(print(StatusSchema, details)));
        } catch {
          // Undecodable details: build the status from code and message, as Envoy does without them.
        }
      }
      return JSON.stringify(toJson(StatusSchema, create(StatusSchema, { code, message }), writeOptions));
    },
  };
}
