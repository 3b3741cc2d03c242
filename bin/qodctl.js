#!/usr/bin/env node
// qodctl, the package's "bin". In a clone (src/ is there) it runs the TypeScript sources through
// tsx, so `npx qodctl` works right after `npm ci` with no build step, no install script, and never
// a stale build. The packed package has no src/: there it runs the bundle `npm pack` built
// (the "prepack" script).
"use strict";
const { existsSync } = require("node:fs");
const path = require("node:path");

const source = path.join(__dirname, "..", "src", "cli", "main.ts");
const bundle = path.join(__dirname, "..", "dist", "cli", "qodctl.js");

function tsxRegister() {
  try {
    return require("tsx/cjs/api").register;
  } catch {
    return undefined; // installed without devDependencies
  }
}

const register = existsSync(source) ? tsxRegister() : undefined;
if (register) {
  register();
  require(source);
} else if (existsSync(bundle)) {
  require(bundle);
} else {
  process.stderr.write("qodctl is not built: run `npm run build:cli` (or `npm ci` with devDependencies).\n");
  process.exit(1);
}
