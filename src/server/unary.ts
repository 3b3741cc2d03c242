// Serves plain async handlers behind the middleware chain, in one place, to two transports:
// grpc-js's callback API (after nice-grpc's handleUnaryCall), and in-process invokers that the
// JSON gateway calls with a request's bytes, so REST runs the same chain, decoding and encoding
// as gRPC without a second hop through a socket. Handlers are typed from the ts-proto service
// definition.
import { randomUUID } from "node:crypto";
import {
  Metadata,
  type ServerUnaryCall,
  type sendUnaryData,
  type ServiceDefinition,
  type StatusObject,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import type { Logger } from "pino";
import { AppError, toServiceError } from "../errors";
import type { Principal } from "../auth/principal";
import type { AuthedContext, CallContext, Handler } from "./context";
import { metadataValue } from "./context";
import { abortError } from "./middleware/deadline";

type RequestOf<M> = M extends { requestDeserialize: (bytes: Buffer) => infer R } ? R : never;
type ResponseOf<M> = M extends { responseSerialize: (value: infer R) => Buffer } ? R : never;

/**
 * Async handlers for every method of a service. Methods listed in `Public` run without a
 * credential and get a CallContext; all others get an AuthedContext, so a handler that reads
 * `ctx.principal` only compiles where authentication runs.
 */
export type ServiceHandlers<D extends ServiceDefinition, Public extends keyof D = never> = {
  [K in keyof D]: (request: RequestOf<D[K]>, ctx: K extends Public ? CallContext : AuthedContext) => Promise<ResponseOf<D[K]>>;
};

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * What a transport knows of a call, and all its context is made from: grpc-js's ServerUnaryCall
 * for gRPC calls (grpcCallInput), the HTTP request for the gateway's in-process calls.
 */
export interface CallInput {
  readonly metadata: Metadata;
  /** The client as grpc-js's getPeer() names it: `address:port`, IPv6 without brackets. */
  readonly peer: string;
  /** Epoch milliseconds; undefined when the client set none. */
  readonly deadline: number | undefined;
  /** Has `listener` run when the client cancels the call; returns what removes it again. */
  onCancel(listener: () => void): () => void;
}

function grpcCallInput(call: ServerUnaryCall<unknown, unknown>): CallInput {
  const raw = call.getDeadline();
  return {
    metadata: call.metadata,
    peer: call.getPeer(),
    deadline: raw instanceof Date ? raw.getTime() : Number.isFinite(raw) ? Number(raw) : undefined,
    onCancel(listener) {
      call.once("cancelled", listener);
      return () => call.removeListener("cancelled", listener);
    },
  };
}

const deadlineExceeded = () => new AppError("deadline_exceeded", "the deadline passed");

/**
 * The context of one call; `done` is called once the handler has settled. A class rather than
 * closures: every call makes one, and its methods live once on the prototype.
 *
 * `signal` aborts with CANCELLED when the client cancels and with DEADLINE_EXCEEDED when the
 * deadline passes. It is made the first time it is read: reads that never look at it (GetTenant)
 * pay for no AbortController, timer or listener. Read later, it is born aborted if the call was
 * cancelled or its deadline has passed, which is what an eager one would show by then.
 *
 * grpc-js (1.14) emits `cancelled` whenever a call's stream closes, also after a call that ended
 * normally (and an HTTP response emits `close` after it is sent), so the listener only lives
 * while the handler runs, and a normal end builds no error.
 */
class CallState implements CallContext {
  readonly metadata: Metadata;
  readonly peer: string;
  readonly deadline: number | undefined;
  readonly requestId: string;
  principal?: Principal;
  private controller: AbortController | undefined;
  private abortSignal: AbortSignal | undefined;
  private cancelled: AppError | undefined;
  private timer: NodeJS.Timeout | undefined;
  private logger: Logger | undefined;
  private readonly stopListening: () => void;

  constructor(
    readonly method: string,
    call: CallInput,
    private readonly baseLog: Logger,
  ) {
    const given = metadataValue(call.metadata, "x-request-id");
    this.requestId = given && REQUEST_ID.test(given) ? given : randomUUID();
    this.metadata = call.metadata;
    this.peer = call.peer;
    this.deadline = call.deadline;
    this.stopListening = call.onCancel(() => {
      this.cancelled = new AppError("cancelled", "the call was cancelled");
      this.controller?.abort(this.cancelled);
    });
  }

  get signal(): AbortSignal {
    this.abortSignal ??= this.makeSignal();
    return this.abortSignal;
  }

  set signal(value: AbortSignal) {
    this.abortSignal = value;
  }

  get abortReason(): AppError | undefined {
    if (this.abortSignal) return this.abortSignal.aborted ? abortError(this.abortSignal) : undefined;
    // First: at the deadline grpc-js closes the stream, which also reads as a cancel.
    if (this.deadline !== undefined && this.deadline <= Date.now()) return deadlineExceeded();
    return this.cancelled;
  }

  /** Made on first use: a successful call at the default level logs nothing, and a pino child serialises its bindings when made. */
  get log(): Logger {
    const { requestId, method, principal } = this;
    this.logger ??= this.baseLog.child(principal ? { requestId, method, subject: principal.subject } : { requestId, method });
    return this.logger;
  }

  set log(value: Logger) {
    this.logger = value;
  }

  done(): void {
    this.stopListening();
    if (this.timer !== undefined) clearTimeout(this.timer);
  }

  private makeSignal(): AbortSignal {
    const controller = (this.controller = new AbortController());
    if (this.cancelled) controller.abort(this.cancelled);
    else if (this.deadline !== undefined) {
      const remaining = this.deadline - Date.now();
      if (remaining <= 0) controller.abort(deadlineExceeded());
      else this.timer = setTimeout(() => controller.abort(deadlineExceeded()), remaining);
    }
    return controller.signal;
  }
}

/** Stands in for a request whose bytes are not a valid message. */
const MALFORMED = Symbol("malformed request");

/**
 * The definition both transports decode and encode with. grpc-js answers INTERNAL when
 * deserialising fails; a client's bad bytes are its own error, so the failure is carried to the
 * handler chain and answered INVALID_ARGUMENT there. A frozen response is encoded once.
 */
function tolerantDefinition(definition: ServiceDefinition): ServiceDefinition {
  return Object.fromEntries(
    Object.entries(definition).map(([key, method]) => [
      key,
      withEncodedOnce({
        ...method,
        requestDeserialize: (bytes: Buffer) => {
          try {
            return method.requestDeserialize(bytes);
          } catch {
            return MALFORMED;
          }
        },
      }),
    ]),
  );
}

/** A frozen response never changes and is shared by many calls (the tenant cache's): its bytes are kept, per method. */
function withEncodedOnce<M extends ServiceDefinition[string]>(method: M): M {
  const encoded = new WeakMap<object, Buffer>();
  return {
    ...method,
    responseSerialize: (value: object) => {
      if (!Object.isFrozen(value)) return method.responseSerialize(value);
      let bytes = encoded.get(value);
      if (!bytes) encoded.set(value, (bytes = method.responseSerialize(value)));
      return bytes;
    },
  };
}

/**
 * What a gRPC client of the call receives: the response headers (`x-request-id`), then the
 * serialised response or the status that toServiceError builds.
 */
export type CallOutcome =
  | { readonly headers: Metadata; readonly response: Buffer; readonly error?: undefined }
  | { readonly headers: Metadata; readonly response?: undefined; readonly error: StatusObject };

/** Calls one method in-process: its request's bytes in, what a gRPC client would receive out. */
export type Invoker = (request: Uint8Array, call: CallInput) => Promise<CallOutcome>;

export interface BoundService {
  /** The grpc-js definition and implementation, for Server.addService. */
  definition: ServiceDefinition;
  implementation: UntypedServiceImplementation;
  /** By method path (`/qod.v1.TenantService/GetTenant`): the same handler, called in-process. */
  invokers: ReadonlyMap<string, Invoker>;
}

function answer(
  ctx: CallState,
  sendHeaders: (headers: Metadata) => void,
  settle: (error: StatusObject | null, response?: unknown) => void,
  error: StatusObject | null,
  response?: unknown,
): void {
  ctx.done();
  const headers = new Metadata();
  headers.set("x-request-id", ctx.requestId);
  sendHeaders(headers);
  settle(error, response);
}

/**
 * Serves one call, the same way for both transports: the context, the handler through the chain,
 * then the response headers and `settle` with the response or the status, as grpc-js's callback
 * takes them. The headers go out with the answer, not before the handler runs: grpc-js then
 * writes headers, message and trailers to the socket at once instead of in two writes.
 */
function serveCall(
  handler: Handler,
  method: string,
  log: Logger,
  request: unknown,
  call: CallInput,
  sendHeaders: (headers: Metadata) => void,
  settle: (error: StatusObject | null, response?: unknown) => void,
): void {
  const ctx = new CallState(method, call, log);
  handler(request, ctx).then(
    (response) => answer(ctx, sendHeaders, settle, null, response),
    (err: unknown) => {
      // The errors middleware turns everything into an AppError; this is a last guard.
      const appError = err instanceof AppError ? err : new AppError("internal", "internal error");
      answer(ctx, sendHeaders, settle, toServiceError(appError, ctx.requestId));
    },
  );
}

/**
 * Builds a service from async handlers and the middleware chain: the grpc-js definition and
 * implementation, and an in-process invoker per method that decodes and encodes with the same
 * (tolerant) definition.
 */
export function bindService<D extends ServiceDefinition>(
  definition: D,
  handlers: { [K in keyof D]: (request: RequestOf<D[K]>, ctx: never) => Promise<ResponseOf<D[K]>> },
  wrap: (handler: Handler) => Handler,
  log: Logger,
): BoundService {
  const tolerant = tolerantDefinition(definition);
  const implementation: UntypedServiceImplementation = {};
  const invokers = new Map<string, Invoker>();
  for (const key of Object.keys(definition) as (keyof D & string)[]) {
    const { path, requestDeserialize, responseSerialize } = tolerant[key]!;
    const typed = handlers[key] as unknown as Handler;
    const handler = wrap(async (request, ctx) => {
      if (request === MALFORMED) throw new AppError("invalid_argument", "the request is not a valid protobuf message");
      return typed(request, ctx);
    });
    implementation[key] = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) =>
      serveCall(handler, path, log, call.request, grpcCallInput(call), (headers) => call.sendMetadata(headers), callback);
    invokers.set(path, (bytes, call) => {
      const request = requestDeserialize(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      return new Promise((resolve) => {
        let headers!: Metadata; // sendHeaders runs right before settle
        serveCall(handler, path, log, request, call, (sent) => (headers = sent), (error, response) => {
          if (error) return resolve({ headers, error });
          try {
            resolve({ headers, response: responseSerialize(response) });
          } catch (err) {
            // A response ts-proto cannot encode: INTERNAL, as grpc-js answers it (without its text).
            log.error({ err, method: path }, "the response could not be encoded");
            resolve({ headers, error: toServiceError(new AppError("internal", "internal error"), metadataValue(headers, "x-request-id")) });
          }
        });
      });
    });
  }
  return { definition: tolerant, implementation, invokers };
}
