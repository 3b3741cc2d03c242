// The login session qodctl keeps between runs: the session token and the server it belongs to,
// in $XDG_CONFIG_HOME/qodctl/session.json (or ~/.config/qodctl/), the directory 0700 and the
// file 0600, written whole (a temporary file renamed over it), so no reader ever sees half.
import { chmodSync, closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import os from "node:os";
import path from "node:path";

export interface StoredSession {
  /** The gRPC target the token was issued by; it is sent nowhere else. */
  server: string;
  /** TLS as at login: the system's roots (true), a CA file (its absolute path), or none. */
  tls: boolean;
  ca?: string;
  token: string;
  username: string;
  /** The user's tenant; "" for the superuser realm. */
  tenant: string;
  /** RFC 3339, when the token expires ("" if the server did not say). */
  expireTime: string;
}

const FILE_NAME = "session.json";
// A session file is a few hundred bytes; anything much larger is not ours.
const MAX_FILE_BYTES = 64 * 1024;

/** `$XDG_CONFIG_HOME/qodctl`, or `~/.config/qodctl` (XDG says a relative XDG_CONFIG_HOME is ignored). */
export function configDir(env: NodeJS.ProcessEnv): string {
  const xdg = env.XDG_CONFIG_HOME;
  const base = xdg && path.isAbsolute(xdg) ? xdg : path.join(env.HOME || os.homedir(), ".config");
  return path.join(base, "qodctl");
}

export function sessionPath(env: NodeJS.ProcessEnv): string {
  return path.join(configDir(env), FILE_NAME);
}

function isStoredSession(value: unknown): value is StoredSession {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  const isString = (key: string) => typeof v[key] === "string";
  return (
    isString("server") && isString("token") && isString("username") && isString("tenant") && isString("expireTime") &&
    typeof v.tls === "boolean" && (v.ca === undefined || isString("ca"))
  );
}

/** The stored session; undefined when there is none. Throws for an unreadable or damaged file. */
export function readSession(env: NodeJS.ProcessEnv): StoredSession | undefined {
  const file = sessionPath(env);
  let text: string;
  try {
    const bytes = readFileSync(file);
    if (bytes.length > MAX_FILE_BYTES) throw new Error("too large");
    text = bytes.toString("utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new Error(`cannot read ${file}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!isStoredSession(parsed)) throw new Error(`${file} is damaged: run \`qodctl login\` again (or delete it)`);
  return parsed;
}

export function writeSession(env: NodeJS.ProcessEnv, session: StoredSession): string {
  const dir = configDir(env);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700); // also when it existed with looser rights
  const file = path.join(dir, FILE_NAME);
  const temporary = path.join(dir, `.${FILE_NAME}.${process.pid}.tmp`);
  // Created 0600 (the umask can only narrow it) and exclusively, so never through a link; a
  // leftover of a crashed run with the same pid is removed first.
  rmSync(temporary, { force: true });
  const fd = openSync(temporary, "wx", 0o600);
  try {
    writeSync(fd, `${JSON.stringify(session, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(temporary, file);
  } catch (err) {
    rmSync(temporary, { force: true });
    throw err;
  }
  return file;
}

/** Forgets the stored session; true if there was one. */
export function deleteSession(env: NodeJS.ProcessEnv): boolean {
  const file = sessionPath(env);
  try {
    rmSync(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
}
