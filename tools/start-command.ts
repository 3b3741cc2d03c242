// What `npm start` runs, shared by the tests (which start the service as a child process) and the
// bench, so both run what ships.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";

export const REPO_ROOT = path.join(__dirname, "..");

let built = false;

/**
 * The start script's command: its prestart script (the esbuild bundle, made once per process),
 * then "node <flags> <entry>" as package.json says (after its `exec`, which makes node the
 * process npm signals).
 */
export function startCommand(): { flags: string[]; entry: string } {
  const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { scripts: { start: string } };
  const words = pkg.scripts.start.trim().split(/\s+/);
  if (words[0] === "exec") words.shift();
  const entry = words[words.length - 1] ?? "";
  if (words[0] !== "node" || !entry.endsWith(".js")) throw new Error(`unexpected start script: ${pkg.scripts.start}`);
  if (!built) {
    execFileSync("npm", ["run", "--silent", "prestart"], { cwd: REPO_ROOT, stdio: ["ignore", "ignore", "inherit"] });
    built = true;
  }
  return { flags: words.slice(1, -1), entry };
}
