// gen/ and envoy/descriptor.binpb are committed; regenerating them must change nothing.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { REPO_ROOT } from "./helpers/process";

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const full = path.join(dir, entry);
    return statSync(full).isDirectory() ? filesUnder(full) : [full];
  });
}

describe("generated code", function () {
  this.timeout(60_000);

  it("is what `buf lint` accepts and `npm run gen` would write", () => {
    const work = mkdtempSync(path.join(tmpdir(), "qod-gen-"));
    try {
      for (const entry of ["buf.yaml", "buf.gen.yaml", "proto", "third_party"]) cpSync(path.join(REPO_ROOT, entry), path.join(work, entry), { recursive: true });
      const buf = path.join(REPO_ROOT, "node_modules", ".bin", "buf");
      const plugin = path.join(REPO_ROOT, "node_modules", ".bin", "protoc-gen-ts_proto");
      execFileSync(buf, ["lint"], { cwd: work });
      const config = readFileSync(path.join(work, "buf.gen.yaml"), "utf8").replace("./node_modules/.bin/protoc-gen-ts_proto", plugin);
      execFileSync(buf, ["generate", "--template", config], { cwd: work });
      execFileSync(buf, ["build", "--as-file-descriptor-set", "-o", "descriptor.binpb"], { cwd: work });

      const committed = filesUnder(path.join(REPO_ROOT, "gen")).map((f) => path.relative(REPO_ROOT, f)).sort();
      const fresh = filesUnder(path.join(work, "gen")).map((f) => path.relative(work, f)).sort();
      assert.deepEqual(fresh, committed, "the set of generated files");
      for (const file of fresh) {
        assert.equal(readFileSync(path.join(work, file), "utf8"), readFileSync(path.join(REPO_ROOT, file), "utf8"), `${file} is stale: run npm run gen`);
      }
      assert.ok(readFileSync(path.join(work, "descriptor.binpb")).equals(readFileSync(path.join(REPO_ROOT, "envoy", "descriptor.binpb"))), "envoy/descriptor.binpb is stale: run npm run gen");
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  describe("buf breaking (the protos are the API)", () => {
    const buf = path.join(REPO_ROOT, "node_modules", ".bin", "buf");
    const breaking = (cwd: string, against: string) => {
      try {
        execFileSync(buf, ["breaking", "--against", against], { cwd, stdio: ["ignore", "pipe", "pipe"] });
        return "";
      } catch (err) {
        return String((err as { stdout?: Buffer }).stdout ?? err);
      }
    };

    it("finds no breaking change against the previous commit's protos (or HEAD's, in a shallow clone)", () => {
      let ref = "HEAD~1";
      try {
        execFileSync("git", ["rev-parse", "--verify", "--quiet", "HEAD~1"], { cwd: REPO_ROOT, stdio: "ignore" });
      } catch {
        ref = "HEAD";
      }
      assert.equal(breaking(REPO_ROOT, `.git#ref=${ref}`), "");
    });

    it("fails on a renumbered or removed field", () => {
      const work = mkdtempSync(path.join(tmpdir(), "qod-breaking-"));
      try {
        for (const entry of ["buf.yaml", "proto", "third_party"]) cpSync(path.join(REPO_ROOT, entry), path.join(work, entry), { recursive: true });
        const file = path.join(work, "proto", "qod", "v1", "pool.proto");
        const original = readFileSync(file, "utf8");
        writeFileSync(file, original.replace("int32 size = 5;", "int32 size = 50;"));
        assert.match(breaking(work, REPO_ROOT), /size/);
        writeFileSync(file, original.replace(/\n\s*\/\/[^\n]*\n\s*bool disabled = 6;/, "\n"));
        assert.match(breaking(work, REPO_ROOT), /disabled|6/);
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    });
  });
});

