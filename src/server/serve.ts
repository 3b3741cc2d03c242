// Serves one call the same way for both transports: the context, the handler through the chain,
// then the response headers and the answer, as grpc-js's callback takes them.
import { Metadata, type StatusObject } from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { Handler } from "../call/context";
import { AppError, toServiceError } from "../errors";
import { CallState, type CallInput } from "./call-state";

export type Settle = (error: StatusObject | null, response?: unknown) => void;

/**
 * Runs `handler` for one call and answers through `sendHeaders` (`x-request-id`) and `settle`.
 * The headers go out with the answer, not before the handler runs: grpc-js then writes headers,
 * message and trailers to the socket at once instead of in two writes.
 */
export function serveCall(
  handler: Handler,
  method: string,
  log: Logger,
  request: unknown,
  call: CallInput,
  sendHeaders: (headers: Metadata) => void,
  settle: Settle,
): void {
  const ctx = new CallState(method, call, log);
  const answer = (error: StatusObject | null, response?: unknown) => {
    ctx.done();
    const headers = new Metadata();
    headers.set("x-request-id", ctx.requestId);
    sendHeaders(headers);
    settle(error, response);
  };
  handler(request, ctx).then(
    (response) => answer(null, response),
    (err: unknown) => {
      // The errors middleware turns everything into an AppError; this is a last guard.
      const appError = err instanceof AppError ? err : new AppError("internal", "internal error");
      answer(toServiceError(appError, ctx.requestId));
    },
  );
}
