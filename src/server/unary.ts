// Adapts plain async handlers to grpc-js's callback API, in one place (after nice-grpc's
// handleUnaryCall). Handlers are typed from the ts-proto service definition.
import { randomUUID } from "node:crypto";
import {
  Metadata,
  type ServerUnaryCall,
  type sendUnaryData,
  type ServiceDefinition,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import type { Logger } from "pino";
import { AppError, toServiceError } from "../errors";
import type { AuthedContext, CallContext, Handler } from "./context";
import { metadataValue } from "./context";

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
 * The context of one call, and `done`, to call once the handler has settled.
 *
 * `signal` aborts with CANCELLED when the client cancels and with DEADLINE_EXCEEDED when the
 * deadline passes. It is made the first time it is read: reads that never look at it (GetTenant)
 * pay for no AbortController, timer or listener. Read later, it is born aborted if the call was
 * cancelled or its deadline has passed, which is what an eager one would show by then.
 *
 * grpc-js (1.14) emits `cancelled` whenever a call's stream closes, also after a call that ended
 * normally, so the listener only lives while the handler runs, and a normal end builds no error.
 */
function createContext(call: ServerUnaryCall<unknown, unknown>, method: string, log: Logger): { ctx: CallContext; done(): void } {
  const given = metadataValue(call.metadata, "x-request-id");
  const requestId = given && REQUEST_ID.test(given) ? given : randomUUID();
  const raw = call.getDeadline();
  const deadline = raw instanceof Date ? raw.getTime() : Number.isFinite(raw) ? Number(raw) : undefined;

  let controller: AbortController | undefined;
  let signal: AbortSignal | undefined;
  let cancelled: AppError | undefined;
  let timer: NodeJS.Timeout | undefined;
  const onCancel = () => {
    cancelled = new AppError("cancelled", "the call was cancelled");
    controller?.abort(cancelled);
  };
  call.once("cancelled", onCancel);
  const deadlineExceeded = () => new AppError("deadline_exceeded", "the deadline passed");
  const makeSignal = (): AbortSignal => {
    controller = new AbortController();
    if (cancelled) controller.abort(cancelled);
    else if (deadline !== undefined) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) controller.abort(deadlineExceeded());
      else timer = setTimeout(() => controller?.abort(deadlineExceeded()), remaining);
    }
    return controller.signal;
  };

  // The call's logger is made on first use: a successful call at the default level logs nothing,
  // and a pino child serialises its bindings when it is made.
  let logger: Logger | undefined;
  const ctx: CallContext = {
    method,
    metadata: call.metadata,
    peer: call.getPeer(),
    get signal(): AbortSignal {
      signal ??= makeSignal();
      return signal;
    },
    set signal(value: AbortSignal) {
      signal = value;
    },
    deadline,
    requestId,
    get log(): Logger {
      logger ??= log.child(ctx.principal ? { requestId, method, subject: ctx.principal.subject } : { requestId, method });
      return logger;
    },
    set log(value: Logger) {
      logger = value;
    },
  };
  const done = () => {
    call.removeListener("cancelled", onCancel);
    if (timer !== undefined) clearTimeout(timer);
  };
  return { ctx, done };
}

/** Stands in for a request whose bytes are not a valid message. */
const MALFORMED = Symbol("malformed request");

/**
 * grpc-js answers INTERNAL when deserialising fails; a client's bad bytes are its own error,
 * so the failure is carried to the handler chain and answered INVALID_ARGUMENT there.
 */
function tolerantDefinition(definition: ServiceDefinition): ServiceDefinition {
  return Object.fromEntries(
    Object.entries(definition).map(([key, method]) => [
      key,
      {
        ...method,
        requestDeserialize: (bytes: Buffer) => {
          try {
            return method.requestDeserialize(bytes);
          } catch {
            return MALFORMED;
          }
        },
      },
    ]),
  );
}

/**
 * Builds the grpc-js definition and implementation of a service from async handlers and the
 * middleware chain.
 */
export function bindService<D extends ServiceDefinition>(
  definition: D,
  handlers: { [K in keyof D]: (request: RequestOf<D[K]>, ctx: never) => Promise<ResponseOf<D[K]>> },
  wrap: (handler: Handler) => Handler,
  log: Logger,
): { definition: ServiceDefinition; implementation: UntypedServiceImplementation } {
  const implementation: UntypedServiceImplementation = {};
  for (const key of Object.keys(definition) as (keyof D & string)[]) {
    const { path } = definition[key];
    const typed = handlers[key] as unknown as Handler;
    const handler = wrap(async (request, ctx) => {
      if (request === MALFORMED) throw new AppError("invalid_argument", "the request is not a valid protobuf message");
      return typed(request, ctx);
    });
    implementation[key] = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
      const { ctx, done } = createContext(call, path, log);
      const headers = new Metadata();
      headers.set("x-request-id", ctx.requestId);
      call.sendMetadata(headers);
      handler(call.request, ctx).then(
        (response) => {
          done();
          callback(null, response);
        },
        (err: unknown) => {
          done();
          // The errors middleware turns everything into an AppError; this is a last guard.
          const appError = err instanceof AppError ? err : new AppError("internal", "internal error");
          callback(toServiceError(appError, ctx.requestId));
        },
      );
    };
  }
  return { definition: tolerantDefinition(definition), implementation };
}
