// The per-call context handlers receive (after nice-grpc's CallContext): metadata, peer,
// cancellation signal, deadline, request id and logger; `principal` once authenticated.
import type { Metadata } from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { Principal } from "../auth/principal";
import type { AppError } from "../errors";

export interface CallContext {
  /** Full method path, e.g. `/qod.v1.TenantService/CreateTenant`. */
  readonly method: string;
  readonly metadata: Metadata;
  readonly peer: string;
  /** Aborts when the client cancels or the deadline passes. */
  signal: AbortSignal;
  /**
   * Why the call must stop now (CANCELLED or DEADLINE_EXCEEDED), or undefined: what `signal`
   * would say, read without making it (a signal costs an AbortController and a timer).
   */
  readonly abortReason: AppError | undefined;
  /** Deadline as epoch milliseconds; undefined when the client set none. */
  readonly deadline: number | undefined;
  readonly requestId: string;
  /** Bound to requestId, method and, once authenticated, subject; made on first use. */
  log: Logger;
  principal?: Principal;
}

/** The context of a method that needs a credential: `principal` is always there. */
export interface AuthedContext extends CallContext {
  readonly principal: Principal;
}

/** A plain async unary handler. */
export type Handler<Req = unknown, Res = unknown, Ctx extends CallContext = CallContext> = (request: Req, ctx: Ctx) => Promise<Res>;

/** Middleware wraps the next handler (connect-es's interceptor onion). */
export type Middleware = (next: Handler) => Handler;

export function compose(middleware: readonly Middleware[]): (handler: Handler) => Handler {
  return (handler) => middleware.reduceRight((next, mw) => mw(next), handler);
}

/** The first value of a metadata key, as a string. */
export function metadataValue(metadata: Metadata, key: string): string | undefined {
  const [value] = metadata.get(key);
  if (value === undefined) return undefined;
  return typeof value === "string" ? value : value.toString("utf8");
}
