// The client's deadline: a call whose deadline has already passed is refused before any work.
// While it runs, ctx.abortReason says when the call was cancelled or its deadline has passed, so a
// handler stops before starting work it cannot finish in time (ctx.signal, made on first use by
// unary.ts, aborts then, for work that must be interrupted), and transactions bound
// statement_timeout by the time left.
import { AppError } from "../../errors";
import type { CallContext, Middleware } from "../context";

export const deadlineMiddleware: Middleware = (next) => async (request, ctx) => {
  if (ctx.deadline !== undefined && ctx.deadline - Date.now() <= 0) {
    throw new AppError("deadline_exceeded", "the deadline passed before the call started");
  }
  return next(request, ctx);
};

/** Throws if the call was cancelled or ran out of time: check before each step with outside effects. */
export function throwIfAborted(call: Pick<CallContext, "abortReason">): void {
  const reason = call.abortReason;
  if (reason) throw reason;
}

/** An aborted signal's reason as the AppError the client gets. */
export function abortError(signal: AbortSignal): AppError {
  const reason: unknown = signal.reason;
  return reason instanceof AppError ? reason : new AppError("cancelled", "the call was cancelled");
}
