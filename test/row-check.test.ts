// The result parser's fast path must never accept a row zod would reject or change
// (src/db/row-check.ts). Every case is checked against zod itself.
import assert from "node:assert/strict";
import { z, type ZodTypeAny } from "zod";
import { rowCheckOf } from "../src/db/row-check";
import { PoolRow } from "../src/pools/rows";
import { TenantRow } from "../src/tenants/rows";

/** What zod makes of the row, as the fast path must see it. */
function zodVerdict(schema: ZodTypeAny, row: unknown): "unchanged" | "changed" | "rejected" {
  const result = schema.safeParse(row);
  if (!result.success) return "rejected";
  try {
    assert.deepStrictEqual(result.data, row);
    // deepStrictEqual ignores key order but not missing keys: zod may only reorder.
    return "unchanged";
  } catch {
    return "changed";
  }
}

function fast(schema: ZodTypeAny, row: unknown): boolean {
  const check = rowCheckOf(schema);
  assert.ok(check, "a zod object has a fast check");
  return check(row);
}

const tenant = {
  name: "acme",
  display_name: "Acme",
  disabled: false,
  auth_provider: "db",
  auth_config: {},
  created_at: 1795426631697,
  updated_at: 1795426631697,
  pools: ["bi", "etl"],
};

const cases: Array<[string, ZodTypeAny, unknown, boolean]> = [
  // [what, schema, row, the fast path accepts it]
  ["a tenant row", TenantRow, tenant, true],
  ["a tenant with an auth config", TenantRow, { ...tenant, auth_config: { issuer: "https://x", realm: "r" } }, true],
  ["a pool row", PoolRow, { id: "p-1", tenant: "acme", tenant_db: "acme_s", name: "bi", size: 2, disabled: false, created_at: 1 }, true],
  ["a NaN number", TenantRow, { ...tenant, created_at: NaN }, false],
  ["a bigint for a number", TenantRow, { ...tenant, created_at: 1n }, false],
  ["a missing column", TenantRow, { ...tenant, pools: undefined }, false],
  ["an extra column (strip would drop it)", TenantRow, { ...tenant, extra: 1 }, false],
  ["null for a string", TenantRow, { ...tenant, name: null }, false],
  ["a number in an array of strings", TenantRow, { ...tenant, pools: ["a", 1] }, false],
  ["an array for a record", TenantRow, { ...tenant, auth_config: ["x"] }, false],
  ["a number in a record of strings", TenantRow, { ...tenant, auth_config: { a: 1 } }, false],
  ["null for a record", TenantRow, { ...tenant, auth_config: null }, false],
  ["a date for a record", TenantRow, { ...tenant, auth_config: new Date() }, false],
  ["an array row", TenantRow, [tenant], false],
  ["null row", TenantRow, null, false],
  ["the void alias, empty", z.object({}).strict(), {}, true],
  ["the void alias with a column", z.object({}).strict(), { a: 1 }, false],
  ["passthrough keeps extra columns", z.object({ a: z.string() }).passthrough(), { a: "x", b: 2 }, true],
  ["nullable null", z.object({ a: z.string().nullable() }), { a: null }, true],
  ["nullable string", z.object({ a: z.string().nullable() }), { a: "x" }, true],
  ["optional missing", z.object({ a: z.string().optional() }), {}, true],
  ["optional present", z.object({ a: z.string().optional() }), { a: "x" }, true],
  ["optional wrong type", z.object({ a: z.string().optional() }), { a: 1 }, false],
  ["enum member", z.object({ s: z.enum(["READY", "FAILED"]) }), { s: "READY" }, true],
  ["enum non-member", z.object({ s: z.enum(["READY", "FAILED"]) }), { s: "GONE" }, false],
  ["literal", z.object({ v: z.literal(1) }), { v: 1 }, true],
  ["literal mismatch", z.object({ v: z.literal(1) }), { v: 2 }, false],
  ["bigint", z.object({ n: z.bigint() }), { n: 5n }, true],
  ["string with a passing check", z.object({ s: z.string().min(2) }), { s: "abc" }, true],
  ["string with a failing check", z.object({ s: z.string().min(2) }), { s: "a" }, false],
  ["string trimmed by zod", z.object({ s: z.string().trim() }), { s: " a " }, false],
  ["coerced number", z.object({ n: z.coerce.number() }), { n: "5" }, false],
  ["coerced number already a number", z.object({ n: z.coerce.number() }), { n: 5 }, true],
  ["a transform", z.object({ s: z.string().transform((v) => v.toUpperCase()) }), { s: "a" }, false],
  ["a refinement that passes", z.object({ s: z.string().refine((v) => v !== "") }), { s: "a" }, true],
  ["a refinement that fails", z.object({ s: z.string().refine((v) => v !== "") }), { s: "" }, false],
  ["a default", z.object({ s: z.string().default("d") }), {}, false],
  ["an array with a minimum, met", z.object({ a: z.array(z.string()).min(1) }), { a: ["x"] }, false],
  ["an array with a minimum, not met", z.object({ a: z.array(z.string()).min(1) }), { a: [] }, false],
  ["a nested object", z.object({ o: z.object({ a: z.number() }) }), { o: { a: 1 } }, true],
  ["a nested object with an extra key", z.object({ o: z.object({ a: z.number() }) }), { o: { a: 1, b: 2 } }, false],
  ["a union", z.object({ u: z.union([z.string(), z.number()]) }), { u: 1 }, true],
  ["a date", z.object({ d: z.date() }), { d: new Date(0) }, false],
  ["a boolean for a string", z.object({ s: z.string() }), { s: true }, false],
];

describe("result parser fast path (row-check)", () => {
  for (const [what, schema, row, accepted] of cases) {
    it(`${accepted ? "accepts" : "leaves to zod"} ${what}`, () => {
      const verdict = zodVerdict(schema, row);
      const ok = fast(schema, row);
      if (ok) assert.equal(verdict, "unchanged", "the fast path accepted a row zod would reject or change");
      assert.equal(ok, accepted);
    });
  }

  it("agrees with zod on random rows: never accepts what zod rejects or changes", () => {
    const pool: unknown[] = ["", "a", " a", 0, 1.5, -1, NaN, Infinity, true, false, null, undefined, 1n, [], ["a"], [1], {}, { k: "v" }, { k: 1 }, new Date(0)];
    const schema = z.object({
      s: z.string(),
      n: z.number(),
      b: z.boolean(),
      ns: z.string().nullable(),
      o: z.string().optional(),
      a: z.array(z.string()),
      r: z.record(z.string()),
    });
    const keys = Object.keys(schema.shape);
    let seed = 42;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) {
      const row: Record<string, unknown> = {};
      for (const key of keys) if (random() < 0.97) row[key] = random() < 0.6 ? validFor(key, random) : pool[Math.floor(random() * pool.length)];
      if (random() < 0.02) row.extra = 1;
      const ok = fast(schema, row);
      const verdict = zodVerdict(schema, row);
      if (ok) {
        accepted++;
        assert.equal(verdict, "unchanged", JSON.stringify(row));
      } else if (verdict === "unchanged") {
        // Completeness: only rows whose columns zod would touch may miss the fast path.
        assert.fail(`zod keeps ${JSON.stringify(row)} unchanged but the fast path refused it`);
      }
    }
    assert.ok(accepted > 100, "the fast path is taken");
  });
});

function validFor(key: string, random: () => number): unknown {
  switch (key) {
    case "s":
      return "x";
    case "n":
      return random() * 100;
    case "b":
      return random() < 0.5;
    case "ns":
      return random() < 0.5 ? null : "y";
    case "o":
      return random() < 0.5 ? undefined : "z";
    case "a":
      return ["p", "q"];
    default:
      return { k: "v" };
  }
}
