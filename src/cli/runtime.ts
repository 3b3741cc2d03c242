// What every qodctl command shares: where output goes, the global flags, the deadline, the
// stored session, the connection, and the failed call that the error report explains.
import { readFileSync } from "node:fs";
import { connect, type Connection, type ConnectOptions } from "../client/clients";
import type { OutputFormat } from "./output";
import { parseDuration } from "./fields";
import { readSession, type StoredSession } from "./session-store";
import { tlsOption, type Target, type TargetFlags } from "./target";
import { safeText } from "./terminal-text";
import { UsageError } from "./usage-error";

/** Where a command's output goes (the process's streams; a buffer in tests). */
export interface Io {
  env: NodeJS.ProcessEnv;
  out(text: string): void;
  err(text: string): void;
}

/** The program's own flags, as every command sees them. */
export interface GlobalOptions extends TargetFlags {
  timeout: string;
  output: OutputFormat;
}

export const DEFAULT_TIMEOUT = "30s";
const MAX_TIMEOUT_MS = 24 * 3_600_000;

/** A call that failed, with what the error report needs for a useful hint. */
export class CallError extends Error {
  constructor(
    readonly failure: unknown,
    readonly credentialSource: Target["credentialSource"] | "login",
    readonly note?: string,
  ) {
    super("the call failed");
    this.name = "CallError";
  }
}

export const examplesHelp = (examples: readonly string[]) => `\nExamples:\n${examples.map((e) => `  $ ${e}`).join("\n")}\n`;

/** --timeout in milliseconds. */
export function timeoutMs(text: string): number {
  const ms = parseDuration(text, true);
  if (ms === undefined || ms <= 0 || ms > MAX_TIMEOUT_MS) throw new UsageError(`--timeout: expected a duration such as 30s, 2m or 500ms (at most 24h), got "${text}"`);
  return ms;
}

/** The stored session, or undefined (with a note) when the file cannot be used. */
export function storedSession(io: Io): StoredSession | undefined {
  try {
    return readSession(io.env);
  } catch (err) {
    io.err(`warning: ignoring the stored session: ${safeText((err as Error).message)}\n`);
    return undefined;
  }
}

export function openConnection(target: Target, credential: Pick<ConnectOptions, "apiKey" | "token">, deadlineMs: number): Connection {
  const tls = tlsOption(target);
  try {
    return connect({ address: target.address, ...credential, tls, deadlineMs });
  } catch (err) {
    // connect() rejects a malformed credential with a TypeError whose message names no secret.
    throw new UsageError((err as Error).message);
  }
}

/** A file the user named (-f, --id-token). */
export function readInputFile(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
