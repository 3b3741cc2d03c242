// A fast path for the result parser (pool.ts): a check derived once from a row's zod schema that
// accepts a row only when zod would accept it and give back an equal row. zod 3 allocates a
// parse context and a result per field; on a page of 100 tenants that was 56% of all the bytes
// the service allocated and the largest CPU cost of the call (bench --profile). Rows the check
// does not accept go through zod as before, so zod still decides every failure and its message.
//
// "Equal" means: the same keys with the same values. zod would return a fresh object with the
// keys in schema order and copies of arrays, records and dates; the check returns the row itself.
import type { ZodTypeAny } from "zod";

type Check = (value: unknown) => boolean;

interface Def {
  typeName?: string;
  checks?: unknown[];
  coerce?: boolean;
  innerType?: ZodTypeAny;
  type?: ZodTypeAny;
  minLength?: unknown;
  maxLength?: unknown;
  exactLength?: unknown;
  keyType?: ZodTypeAny;
  valueType?: ZodTypeAny;
  values?: readonly unknown[];
  value?: unknown;
  shape?: () => Record<string, ZodTypeAny>;
  unknownKeys?: "strip" | "strict" | "passthrough";
  catchall?: ZodTypeAny;
}

const defOf = (schema: ZodTypeAny): Def => (schema as unknown as { _def: Def })._def;

/** What zod 3 calls an "object" (getParsedType): not null, an array, a date, map, set or promise. */
function isZodObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  if (value instanceof Date || value instanceof Map || value instanceof Set) return false;
  const then = (value as { then?: unknown; catch?: unknown }).then;
  return !(typeof then === "function" && typeof (value as { catch?: unknown }).catch === "function");
}

const plain = (def: Def) => (def.checks === undefined || def.checks.length === 0) && def.coerce !== true;

function compile(schema: ZodTypeAny): Check {
  const def = defOf(schema);
  switch (def.typeName) {
    case "ZodString":
      if (plain(def)) return (v) => typeof v === "string";
      break;
    case "ZodNumber":
      if (plain(def)) return (v) => typeof v === "number" && !Number.isNaN(v);
      break;
    case "ZodBoolean":
      if (plain(def)) return (v) => typeof v === "boolean";
      break;
    case "ZodBigInt":
      if (plain(def)) return (v) => typeof v === "bigint";
      break;
    case "ZodNull":
      return (v) => v === null;
    case "ZodNullable": {
      const inner = compile(def.innerType as ZodTypeAny);
      return (v) => v === null || inner(v);
    }
    case "ZodOptional": {
      const inner = compile(def.innerType as ZodTypeAny);
      return (v) => v === undefined || inner(v);
    }
    case "ZodEnum": {
      const values = new Set(def.values);
      return (v) => typeof v === "string" && values.has(v);
    }
    case "ZodLiteral": {
      const literal = def.value;
      return (v) => v === literal;
    }
    case "ZodArray":
      if (def.minLength === null && def.maxLength === null && def.exactLength === null) {
        const item = compile(def.type as ZodTypeAny);
        return (v) => Array.isArray(v) && v.every((x) => item(x));
      }
      break;
    case "ZodRecord": {
      const key = defOf(def.keyType as ZodTypeAny);
      if (key.typeName === "ZodString" && plain(key)) {
        const value = compile(def.valueType as ZodTypeAny);
        return (v) => {
          if (!isZodObject(v)) return false;
          for (const k in v) if (!value(v[k])) return false;
          return true;
        };
      }
      break;
    }
    case "ZodObject": {
      const object = compileObject(def);
      if (object) return object;
      break;
    }
  }
  // Anything else (refinements, transforms, defaults, unions…): zod decides for this value, and
  // it must come out as it went in.
  return (v) => {
    const result = schema.safeParse(v);
    return result.success && Object.is(result.data, v);
  };
}

function compileObject(def: Def): Check | undefined {
  if (!def.shape || defOf(def.catchall as ZodTypeAny).typeName !== "ZodNever") return undefined;
  const shape = def.shape();
  const fields = Object.keys(shape).map((key) => [key, compile(shape[key] as ZodTypeAny)] as const);
  const closed = def.unknownKeys !== "passthrough";
  return (v) => {
    if (!isZodObject(v)) return false;
    for (const [key, check] of fields) if (!check(v[key])) return false;
    // strip would drop an unknown key (the row would differ) and strict would fail: leave both to zod.
    if (closed) for (const key in v) if (!Object.prototype.hasOwnProperty.call(shape, key)) return false;
    return true;
  };
}

const cache = new WeakMap<ZodTypeAny, Check | null>();

/** The fast check of a row schema (a zod object), or undefined when there is none. */
export function rowCheckOf(schema: ZodTypeAny): Check | undefined {
  let check = cache.get(schema);
  if (check === undefined) {
    check = defOf(schema).typeName === "ZodObject" ? (compileObject(defOf(schema)) ?? null) : null;
    cache.set(schema, check);
  }
  return check ?? undefined;
}
