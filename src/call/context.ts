// The contract of one call, the ground floor every layer builds on (after nice-grpc's
// CallContext): what a handler receives, what a handler is, and what middleware is. Transports
// (server/) make contexts; domains read them; nothing here knows a transport or a database.
import type { Metadata, ServiceDefinition } from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { AppError } from "../errors";
import type { Principal } from "./principal";

/** Which listener a call came in on: the gRPC port, or the JSON /api gateway (in-process). */
export const SURFACES = ["grpc", "rest"] as const;
export type Surface = (typeof SURFACES)[number];

export interface CallContext {
  /** Full method path, e.g. `/qod.v1.TenantService/CreateTenant`. */
  readonly method: string;
  readonly surface: Surface;
  readonly metadata: Metadata;
  readonly peer: string;
  /** Aborts when the client cancels or the deadline passes; made on first read. */
  readonly signal: AbortSignal;
  /**
   * Why the call must stop now (CANCELLED or DEADLINE_EXCEEDED), or undefined: what `signal`
   * would say, read without making it (a signal costs an AbortController and a timer).
   */
  readonly abortReason: AppError | undefined;
  /** Deadline as epoch milliseconds; undefined when the client set none. */
  readonly deadline: number | undefined;
  readonly requestId: string;
  /** Bound to requestId, method and, once authenticated, subject; made on first use. */
  readonly log: Logger;
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

type RequestOf<M> = M extends { requestDeserialize: (bytes: Buffer) => infer R } ? R : never;
type ResponseOf<M> = M extends { responseSerialize: (value: infer R) => Buffer } ? R : never;

/**
 * Async handlers for every method of a ts-proto service definition. Methods in `Public` run
 * without a credential and get a CallContext; all others get an AuthedContext, so a handler that
 * reads `ctx.principal` only compiles where authentication runs. `Public` comes from the one list
 * of public methods (call/public-methods.ts).
 */
export type ServiceHandlers<D extends ServiceDefinition, Public extends keyof D = never> = {
  [K in keyof D]: (request: RequestOf<D[K]>, ctx: K extends Public ? CallContext : AuthedContext) => Promise<ResponseOf<D[K]>>;
};
