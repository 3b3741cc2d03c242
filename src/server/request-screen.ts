// The first look at every request, on its wire bytes, before it is decoded: both transports
// decode here (call-definition.ts), so a gRPC call and a JSON request transcoded to the same
// bytes meet the same checks.
//
// - A string (a field, a list element, a map key or value, at any depth) holding NUL: Postgres
//   `text` and `jsonb` cannot store it, so such a value would fail deep inside a statement.
//   (Bytes that are not UTF-8 decode to U+FFFD, which Postgres stores; NUL is the one character
//   a UTF-8 database refuses.)
// - A map key `__proto__`: the decoder assigns entries to a plain object, where that key sets the
//   prototype instead of an entry, so the entry would vanish without a word.
//
// Field paths are the proto names (snake_case), as google.rpc.BadRequest wants them: `name`,
// `auth_config.issuer` for a map value, `list[2]` for a list element.
import { ScalarType, type DescField, type DescMessage, type Registry } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import type { FieldViolation } from "../errors";

/** The violations of one request's bytes; throws when the bytes are not a wire encoding at all. */
export type RequestScreen = (bytes: Uint8Array) => FieldViolation[];

const PROTO_KEY = Buffer.from("__proto__");
const NUL = 0;
/** A key that is itself unfit to appear in a field path. */
const printableKey = (key: Uint8Array): boolean => key.length <= 64 && !key.includes(NUL) && !Buffer.from(key).equals(PROTO_KEY);

const nulViolation = (field: string): FieldViolation => ({ field, reason: "invalid_character", description: "must not hold a NUL character" });

/** Fields by number, per message, made once. */
const fieldsOf = new WeakMap<DescMessage, ReadonlyMap<number, DescField>>();
function fieldByNumber(message: DescMessage, number: number): DescField | undefined {
  let fields = fieldsOf.get(message);
  if (!fields) fieldsOf.set(message, (fields = new Map(message.fields.map((f) => [f.number, f]))));
  return fields.get(number);
}

/** Reads one map entry (key = 1, value = 2) of `field` and checks it. */
function screenMapEntry(field: DescField & { fieldKind: "map" }, reader: BinaryReader, end: number, path: string, out: FieldViolation[]): void {
  let key: Uint8Array | undefined;
  let value: Uint8Array | undefined;
  while (reader.pos < end) {
    const [number, wireType] = reader.tag();
    if (number === 1 && wireType === WireType.LengthDelimited && field.mapKey === ScalarType.STRING) key = reader.bytes();
    else if (number === 2 && wireType === WireType.LengthDelimited && field.mapKind === "message") {
      const length = reader.uint32();
      screenMessage(field.message, reader, reader.pos + length, `${path}.`, out);
    } else if (number === 2 && wireType === WireType.LengthDelimited && field.mapKind === "scalar" && field.scalar === ScalarType.STRING) value = reader.bytes();
    else reader.skip(wireType, number);
  }
  if (key?.includes(NUL)) out.push({ field: path, reason: "invalid_character", description: "has a key holding a NUL character" });
  else if (key && Buffer.from(key).equals(PROTO_KEY)) out.push({ field: path, reason: "invalid_map_key", description: "must not have the key __proto__" });
  if (value?.includes(NUL)) out.push(nulViolation(key && printableKey(key) ? `${path}.${Buffer.from(key).toString("utf8")}` : path));
}

function screenMessage(message: DescMessage, reader: BinaryReader, end: number, prefix: string, out: FieldViolation[]): void {
  const seen = new Map<number, number>(); // elements read so far, per list field
  while (reader.pos < end) {
    const [number, wireType] = reader.tag();
    const field = fieldByNumber(message, number);
    if (!field || wireType !== WireType.LengthDelimited) {
      reader.skip(wireType, number);
      continue;
    }
    const path = `${prefix}${field.name}`;
    switch (field.fieldKind) {
      case "scalar":
        if (field.scalar !== ScalarType.STRING) reader.skip(wireType, number);
        else if (reader.bytes().includes(NUL)) out.push(nulViolation(path));
        break;
      case "message": {
        const length = reader.uint32();
        screenMessage(field.message, reader, reader.pos + length, `${path}.`, out);
        break;
      }
      case "list": {
        const index = seen.get(number) ?? 0;
        seen.set(number, index + 1);
        if (field.listKind === "message") {
          const length = reader.uint32();
          screenMessage(field.message, reader, reader.pos + length, `${path}[${index}].`, out);
        } else if (field.listKind === "scalar" && field.scalar === ScalarType.STRING) {
          if (reader.bytes().includes(NUL)) out.push(nulViolation(`${path}[${index}]`));
        } else reader.skip(wireType, number); // packed numbers and enums
        break;
      }
      case "map": {
        const length = reader.uint32();
        screenMapEntry(field, reader, reader.pos + length, path, out);
        break;
      }
      default:
        reader.skip(wireType, number);
    }
  }
  if (reader.pos !== end) throw new RangeError("a nested message ends inside its last field");
}

/** The screen of a message type, by its descriptor. */
export function requestScreen(message: DescMessage): RequestScreen {
  return (bytes) => {
    const out: FieldViolation[] = [];
    screenMessage(message, new BinaryReader(bytes), bytes.length, "", out);
    return out;
  };
}

/** The screen of each method's request, by its gRPC path (`/qod.v1.TenantService/GetTenant`). */
export function requestScreens(registry: Registry): (path: string) => RequestScreen {
  return (path) => {
    const [, service, method] = /^\/([^/]+)\/([^/]+)$/.exec(path) ?? [];
    const described = service ? registry.getService(service)?.methods.find((m) => m.name === method) : undefined;
    if (!described) throw new Error(`no descriptor for ${path}`);
    return requestScreen(described.input);
  };
}
