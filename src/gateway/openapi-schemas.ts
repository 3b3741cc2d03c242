// JSON Schemas (2020-12, OpenAPI 3.1's dialect) of messages, enums and fields, as proto3 JSON
// prints them with the transcoder's print options: each message and enum once, as a component.
import { ScalarType, type DescEnum, type DescField, type DescMessage, type JsonObject } from "@bufbuild/protobuf";
import { FeatureSet_FieldPresence, isWrapperDesc } from "@bufbuild/protobuf/wkt";
import { documented, type Comments } from "./openapi-comments";
import { PRINT_OPTIONS } from "./transcode";

/** proto3 JSON of each scalar type, as @bufbuild/protobuf's toJson prints it (64-bit integers as strings). */
function scalarSchema(type: ScalarType): JsonObject {
  switch (type) {
    case ScalarType.STRING:
      return { type: "string" };
    case ScalarType.BOOL:
      return { type: "boolean" };
    case ScalarType.BYTES:
      return { type: "string", format: "byte", contentEncoding: "base64" };
    case ScalarType.DOUBLE:
      return { type: "number", format: "double" };
    case ScalarType.FLOAT:
      return { type: "number", format: "float" };
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return { type: "integer", format: "int32" };
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return { type: "integer", format: "uint32", minimum: 0, maximum: 4294967295 };
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return { type: "string", format: "int64", pattern: "^-?[0-9]+$" };
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return { type: "string", format: "uint64", pattern: "^[0-9]+$" };
  }
}

/** Well-known types whose JSON is not an object of their fields (wrappers are handled apart). */
const WELL_KNOWN: Record<string, JsonObject> = {
  "google.protobuf.Timestamp": { type: "string", format: "date-time" },
  "google.protobuf.Duration": { type: "string", pattern: "^-?[0-9]+(\\.[0-9]{1,9})?s$" },
  "google.protobuf.FieldMask": { type: "string" },
  "google.protobuf.Struct": { type: "object", additionalProperties: true },
  "google.protobuf.Value": {},
  "google.protobuf.ListValue": { type: "array", items: {} },
  "google.protobuf.Empty": { type: "object" },
  "google.protobuf.Any": { type: "object", properties: { "@type": { type: "string" } }, required: ["@type"] },
};
// Well-known types that a query parameter can carry (their JSON is one string or number).
const BINDABLE_WELL_KNOWN = new Set(["google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask"]);
const NULL_VALUE = "google.protobuf.NullValue";

/** Adds `null` to a schema: to its `type`, or as an alternative. */
function nullable(schema: JsonObject): JsonObject {
  if (typeof schema.type === "string" && schema.enum === undefined) return { ...schema, type: [schema.type, "null"] };
  return { anyOf: [schema, { type: "null" }] };
}

const ref = (name: string): JsonObject => ({ $ref: `#/components/schemas/${name}` });

/** JSON Schemas of messages and enums, each once, as components. */
export class Schemas {
  readonly components = new Map<string, JsonObject>();

  constructor(private readonly comments: Comments) {}

  /** The JSON key the transcoder prints for a field. */
  key(field: DescField): string {
    return PRINT_OPTIONS.preserve_proto_field_names ? field.name : field.jsonName;
  }

  message(message: DescMessage): JsonObject {
    const known = WELL_KNOWN[message.typeName];
    if (known) return structuredClone(known);
    if (isWrapperDesc(message)) return scalarSchema(message.fields[0].scalar);
    if (!this.components.has(message.typeName)) {
      const schema: JsonObject = { type: "object", ...documented(this.comments, message) };
      this.components.set(message.typeName, schema); // before the fields: a message may contain itself
      schema.properties = Object.fromEntries(message.fields.map((f) => [this.key(f), this.property(f)]));
    }
    return ref(message.typeName);
  }

  enum(desc: DescEnum): JsonObject {
    if (desc.typeName === NULL_VALUE) return { type: "null" };
    if (!this.components.has(desc.typeName)) {
      // Printed by name (PRINT_OPTIONS: enums not as ints); each value's comment in the description.
      const values = desc.values.map((v) => {
        const comment = this.comments.of(v);
        return `- \`${v.name}\`${comment ? `: ${comment.replace(/\n/g, " ")}` : ""}`;
      });
      const comment = this.comments.of(desc);
      const description = [...(comment ? [comment] : []), values.join("\n")].join("\n\n");
      this.components.set(desc.typeName, { type: "string", enum: desc.values.map((v) => v.name), description, ...(desc.deprecated ? { deprecated: true } : {}) });
    }
    return ref(desc.typeName);
  }

  /** A field's value: scalars, enums, messages, lists and maps, without presence or documentation. */
  value(field: DescField): JsonObject {
    switch (field.fieldKind) {
      case "scalar":
        return scalarSchema(field.scalar);
      case "enum":
        return this.enum(field.enum);
      case "message":
        return this.message(field.message);
      case "list":
        return {
          type: "array",
          items: field.listKind === "scalar" ? scalarSchema(field.scalar) : field.listKind === "enum" ? this.enum(field.enum) : this.message(field.message),
        };
      case "map": {
        const value = field.mapKind === "scalar" ? scalarSchema(field.scalar) : field.mapKind === "enum" ? this.enum(field.enum) : this.message(field.message);
        // JSON object keys are strings; integer and bool keys are printed as their text.
        const schema: JsonObject = { type: "object", additionalProperties: value };
        if (field.mapKey === ScalarType.BOOL) schema.propertyNames = { enum: ["true", "false"] };
        else if (field.mapKey !== ScalarType.STRING) schema.propertyNames = { pattern: "^-?[0-9]+$" };
        return schema;
      }
    }
  }

  /** A message property: its value, `null` where proto3 JSON takes it for "unset", and its comment. */
  property(field: DescField): JsonObject {
    let schema = this.value(field);
    const explicitScalar = (field.fieldKind === "scalar" || field.fieldKind === "enum") && field.presence === FeatureSet_FieldPresence.EXPLICIT;
    if (explicitScalar || (field.fieldKind === "message" && isWrapperDesc(field.message))) schema = nullable(schema);
    const docs = documented(this.comments, field);
    // A $ref takes its target's description unless the property has its own.
    return { ...schema, ...docs };
  }

  /** Whether query parameters reach into the field's message by field path (`page.size`): a plain message, not a well-known type. */
  nestsParameters(field: DescField): field is DescField & { fieldKind: "message" } {
    return field.fieldKind === "message" && !WELL_KNOWN[field.message.typeName] && !isWrapperDesc(field.message);
  }

  /** Whether a query parameter can carry the field: a scalar, an enum, a list of those, or a string-like well-known type. */
  bindable(field: DescField): boolean {
    if (field.fieldKind === "scalar" || field.fieldKind === "enum") return true;
    if (field.fieldKind === "list") return field.listKind !== "message";
    return field.fieldKind === "message" && (isWrapperDesc(field.message) || BINDABLE_WELL_KNOWN.has(field.message.typeName));
  }
}
