// The architecture's rules that a linter cannot see file by file: the folders of src/ form no
// import cycle and read bottom-up (ARCHITECTURE.md), and the error reasons are one closed list
// that matches SPEC §4 (the table below is a literal copy of the spec, not imported from src).
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { status } from "@grpc/grpc-js";
import { codeForReason, REASONS, type Reason } from "../src/errors";
import { REPO_ROOT } from "./helpers/process";

const SRC = path.join(REPO_ROOT, "src");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) return sourceFiles(full);
    return full.endsWith(".ts") ? [full] : [];
  });
}

/** The unit of a file: its folder under src/, or "foundation" for src's own files (but app and main). */
function unitOf(file: string): string {
  const [first = ""] = path.relative(SRC, file).split(path.sep);
  if (first.endsWith(".ts")) return ["app.ts", "main.ts", "plane.ts"].includes(first) ? "app" : "foundation";
  return first === "call" ? "foundation" : first;
}

/** Bottom-up: a unit may import units of its own layer or lower ones. */
const LAYERS: Record<string, number> = { foundation: 0, db: 1, auth: 2, databases: 2, pools: 2, supavisor: 2, tenants: 2, server: 3, gateway: 3, edge: 3, app: 4, cli: 4, client: 4 };

function importGraph(): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const file of sourceFiles(SRC)) {
    const from = unitOf(file);
    const edges = graph.get(from) ?? new Set<string>();
    graph.set(from, edges);
    for (const [, spec] of readFileSync(file, "utf8").matchAll(/(?:from|import)\s+"(\.[^"]+)"/g)) {
      const target = path.resolve(path.dirname(file), spec);
      if (!target.startsWith(SRC + path.sep)) continue; // gen/, package.json
      const to = unitOf(target.endsWith(".ts") ? target : `${target}.ts`);
      if (to !== from) edges.add(to);
    }
  }
  return graph;
}

describe("architecture", () => {
  const graph = importGraph();

  it("knows the layer of every folder of src/", () => {
    for (const unit of graph.keys()) assert.ok(unit in LAYERS, `src/${unit} has no layer in this test and ARCHITECTURE.md`);
  });

  it("imports point down only", () => {
    const upward = [...graph].flatMap(([from, tos]) => [...tos].filter((to) => LAYERS[to] > LAYERS[from]).map((to) => `${from} → ${to}`));
    assert.deepEqual(upward, []);
  });

  it("has no import cycle between the folders of src/", () => {
    const cycles: string[] = [];
    const visit = (unit: string, trail: string[]) => {
      for (const next of graph.get(unit) ?? []) {
        if (trail.includes(next)) cycles.push([...trail.slice(trail.indexOf(next)), next].join(" → "));
        else visit(next, [...trail, next]);
      }
    };
    for (const unit of graph.keys()) visit(unit, [unit]);
    assert.deepEqual(cycles, []);
  });

  describe("error reasons (SPEC §4)", () => {
    // SPEC §4's table, copied.
    const SPEC: [Reason, status][] = [
      ["unauthenticated", status.UNAUTHENTICATED],
      ["tenant_forbidden", status.PERMISSION_DENIED],
      ["superuser_required", status.PERMISSION_DENIED],
      ["admin_required", status.PERMISSION_DENIED],
      ["not_found", status.NOT_FOUND],
      ["exists", status.ALREADY_EXISTS],
      ["has_pools", status.ABORTED],
      ["rate_limited", status.RESOURCE_EXHAUSTED],
      ["quota_exceeded", status.RESOURCE_EXHAUSTED],
      ["unavailable", status.UNAVAILABLE],
    ];

    it("lists each reason once", () => {
      assert.equal(new Set(REASONS).size, REASONS.length);
    });

    for (const [reason, code] of SPEC) {
      it(`${reason} is ${status[code]}`, () => {
        assert.ok((REASONS as readonly string[]).includes(reason));
        assert.equal(codeForReason(reason), code);
      });
    }

    it("gives every invalid_* reason INVALID_ARGUMENT, and INTERNAL only to `internal`", () => {
      for (const reason of REASONS) {
        const code = codeForReason(reason);
        if (reason.startsWith("invalid_")) assert.equal(code, status.INVALID_ARGUMENT, reason);
        assert.equal(code === status.INTERNAL, reason === "internal", reason);
      }
    });
  });
});
