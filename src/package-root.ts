// The package's root directory, where the committed files the service reads at start live
// (envoy/descriptor.binpb, src/db/migrations). The code runs from src/ (tsx: tests, tools) or
// bundled into dist/ (npm start), so it is found by walking up to package.json.
import { existsSync } from "node:fs";
import path from "node:path";

function findPackageRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, "package.json"))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

export const PACKAGE_ROOT = findPackageRoot(__dirname);
