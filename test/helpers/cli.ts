// qodctl as a user runs it: a child process with its own HOME and XDG_CONFIG_HOME, no inherited
// credentials, stdin a pipe (or a pseudo-terminal through util-linux `script`).
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { REPO_ROOT } from "./process";

/** The bin a clone runs (`npx qodctl`): the TypeScript sources through tsx. */
export const QODCTL_BIN = path.join(REPO_ROOT, "bin", "qodctl.js");
/** The bundle the packed package runs; built once per test process. */
export const QODCTL_BUNDLE = path.join(REPO_ROOT, "dist", "cli", "qodctl.js");

let bundleBuilt = false;

/** Builds dist/cli/qodctl.js with the package's own script (what `npm pack` runs). */
export function buildCliBundle(): string {
  if (!bundleBuilt) {
    execFileSync("npm", ["run", "--silent", "build:cli"], { cwd: REPO_ROOT, stdio: ["ignore", "ignore", "inherit"] });
    bundleBuilt = true;
  }
  return QODCTL_BUNDLE;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A private home: HOME and XDG_CONFIG_HOME under one temp directory. */
export interface CliHome {
  dir: string;
  configDir: string;
  env: Record<string, string>;
  remove(): void;
}

export function cliHome(extraEnv: Record<string, string> = {}): CliHome {
  const dir = mkdtempSync(path.join(tmpdir(), "qodctl-home-"));
  const configDir = path.join(dir, "config");
  return {
    dir,
    configDir,
    // Nothing inherited but PATH: no QOD_API_KEY, CI or TERM of the runner leaks into the command.
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, XDG_CONFIG_HOME: configDir, ...extraEnv },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface RunOptions {
  env: Record<string, string>;
  /** Written to stdin, which is then closed (stdin is always a pipe). */
  input?: string;
  /** The entry to run: the bundle (default) or the clone's bin. */
  entry?: string;
  cwd?: string;
  timeoutMs?: number;
}

export function runCli(args: readonly string[], options: RunOptions): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [options.entry ?? QODCTL_BUNDLE, ...args], {
      cwd: options.cwd ?? options.env.HOME,
      env: options.env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 30_000);
    child.once("error", reject);
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr });
    });
    child.stdin.end(options.input ?? "");
  });
}

/** Quotes a word for `sh -c`. */
const shellQuote = (word: string) => `'${word.replace(/'/g, `'\\''`)}'`;

export interface TerminalSession {
  /** Everything the terminal showed so far (the command's output and the terminal's echo). */
  screen(): string;
  /** Resolves once the screen contains `text`. */
  waitFor(text: string, timeoutMs?: number): Promise<void>;
  type(text: string): void;
  /** Resolves with the command's exit status. */
  exited: Promise<number>;
}

/**
 * Runs qodctl on a pseudo-terminal (`script -qfec`), so its stdin, stdout and stderr are a TTY
 * and what the terminal echoes shows up on the screen like everything else.
 */
export function runCliOnTerminal(args: readonly string[], options: RunOptions): TerminalSession {
  const command = [process.execPath, options.entry ?? QODCTL_BUNDLE, ...args].map(shellQuote).join(" ");
  const child = spawn("script", ["-qfec", command, "/dev/null"], {
    cwd: options.cwd ?? options.env.HOME,
    env: { SHELL: "/bin/sh", TERM: "xterm", ...options.env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let screen = "";
  const waiters = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    screen += chunk.toString();
    for (const wake of waiters) wake();
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 30_000);
  const exited = new Promise<number>((resolve) =>
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      for (const wake of waiters) wake();
      resolve(code ?? (signal ? 128 : -1));
    }),
  );
  return {
    screen: () => screen,
    waitFor(text, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (screen.includes(text)) {
            waiters.delete(check);
            clearTimeout(expiry);
            resolve();
          } else if (child.exitCode !== null || child.signalCode !== null) {
            waiters.delete(check);
            clearTimeout(expiry);
            reject(new Error(`the command ended before showing ${JSON.stringify(text)}; screen:\n${screen}`));
          }
        };
        const expiry = setTimeout(() => {
          waiters.delete(check);
          child.kill("SIGKILL"); // the test fails here: nothing is left running
          reject(new Error(`no ${JSON.stringify(text)} on the screen after ${timeoutMs} ms; screen:\n${screen}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    type: (text) => void child.stdin.write(text),
    exited,
  };
}

/** Asserts that qodctl exited 0; returns its result. */
export function ok(result: CliResult): CliResult {
  assert.equal(result.code, 0, `exit ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
  return result;
}

/** Asserts that qodctl exited with `code`, said `stderr`, and printed nothing on stdout. */
export function failed(result: CliResult, code: number, stderr: RegExp): void {
  assert.equal(result.code, code, `stdout: ${result.stdout}\nstderr: ${result.stderr}`);
  assert.match(result.stderr, stderr);
  assert.equal(result.stdout, "");
}
