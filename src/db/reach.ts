// Waits for an external state database's server at start: a server that is not up yet (a compose
// stack, a restarting host) is tried again with backoff for QOD_PG_CONNECT_TIMEOUT_SEC, and what
// finally stops the start names the state database and the variables to look at.
import { setTimeout as delay } from "node:timers/promises";
import { Client } from "pg";
import type { Logger } from "pino";
import type { PgTarget } from "../config";

/** The database every server has; the state database may not exist yet (state.ts creates it). */
const MAINTENANCE_DATABASE = "postgres";
const FIRST_WAIT_MS = 500;
const LONGEST_WAIT_MS = 5_000;
/** An attempt that gets no answer (a host that drops packets) gives up after this. */
const ATTEMPT_TIMEOUT_MS = 5_000;

export interface ReachOptions {
  /** The state database, named in messages. */
  database: string;
  /** The variables that set the server's address and login, named in messages. */
  variables: { address: string; login: string };
  /** How long to keep trying; 0 tries once. */
  timeoutMs: number;
  logger: Logger;
}

/** Thrown when the server cannot be used; the message names the variables, never the password. */
export class UnreachableServerError extends Error {}

/** SQLSTATEs of a server that may answer differently soon: starting up or shutting down, too many connections. */
const TRANSIENT_SQLSTATE = /^(08...|53300|57P0[123])$/;

/** A refusal from the server itself (wrong password, no such database): trying again cannot help. */
function lasting(err: unknown): { code: string; message: string } | undefined {
  const { code, message } = err as { code?: unknown; message?: unknown };
  if (typeof code !== "string" || !/^[0-9A-Z]{5}$/.test(code) || TRANSIENT_SQLSTATE.test(code)) return undefined;
  return { code, message: typeof message === "string" ? message : code };
}

/** What failed, e.g. `connect ECONNREFUSED 127.0.0.1:5432` (an AggregateError of several addresses has no message, only a code). */
function describe(err: unknown): string {
  const { message, code } = err as { message?: unknown; code?: unknown };
  if (typeof message === "string" && message !== "") return message;
  return typeof code === "string" ? code : String(err);
}

async function attempt(target: PgTarget, timeoutMs: number): Promise<void> {
  const client = new Client({
    host: target.host,
    port: target.port,
    user: target.user,
    ...(target.password !== undefined && { password: target.password }),
    database: MAINTENANCE_DATABASE,
    connectionTimeoutMillis: Math.max(100, Math.min(ATTEMPT_TIMEOUT_MS, timeoutMs)),
  });
  // A connection that breaks after connect() reports it here; the caller already has the failure.
  client.on("error", () => {});
  try {
    await client.connect();
    await client.query("SELECT 1");
  } finally {
    await client.end().catch(() => {});
  }
}

/** Resolves once the server accepts the login; otherwise throws UnreachableServerError. */
export async function reachServer(target: PgTarget, options: ReachOptions): Promise<void> {
  const { database, variables, timeoutMs, logger } = options;
  const where = `${target.host}:${target.port}`;
  const deadline = Date.now() + timeoutMs;
  let wait = FIRST_WAIT_MS;
  for (let tries = 1; ; tries++) {
    try {
      return await attempt(target, deadline - Date.now());
    } catch (err) {
      const refused = lasting(err);
      if (refused?.code.startsWith("28")) {
        throw new UnreachableServerError(`the state database's server ${where} refused the login of user "${target.user}" (${variables.login}): ${refused.message}`);
      }
      if (refused) {
        throw new UnreachableServerError(`the state database's server ${where} (${variables.address}) answered: ${refused.message} (SQLSTATE ${refused.code})`);
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        const seconds = Math.round(timeoutMs / 1000);
        const tried = tries === 1 ? "tried once" : `gave up after ${tries} tries over ${seconds} s`;
        throw new UnreachableServerError(
          `cannot reach the server of the state database "${database}" at ${where} (${variables.address}): ${describe(err)}; ${tried} (QOD_PG_CONNECT_TIMEOUT_SEC=${seconds})`,
        );
      }
      const next = Math.min(wait, left);
      logger.warn(
        { host: target.host, port: target.port, user: target.user, database, variables: variables.address, error: describe(err), attempt: tries, retryInMs: next },
        "the state database's server cannot be reached yet; retrying",
      );
      await delay(next);
      wait = Math.min(wait * 2, LONGEST_WAIT_MS);
    }
  }
}
