// The client's deadline: a call whose deadline has already passed is refused before any work.
// While it runs, ctx.signal aborts when the deadline passes (unary.ts makes it), so a handler stops
// before starting work it cannot finish in time, and transactions bound statement_timeout by the
// time left.
import { AppError } from "../../errors";
import type { Middleware } from "../context";

export const deadlineMiddleware: Middleware = (next) => async (request, ctx) => {
  if (ctx.deadline !== undefined && ctx.deadline - Date.now() <= 0) {
    throw new AppError("deadline_exceeded", "the deadline passed before the call started");
  }
  return next(request, ctx);
};

/** Throws if the call was cancelled or ran out of time: check before each step with outside effects. */
export function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) {
    const reason: unknown = signal.reason;
    throw reason instanceof AppError ? reason : new AppError("cancelled", "the call was cancelled");
  }
}
