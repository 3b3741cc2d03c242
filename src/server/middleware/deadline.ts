// Makes the client's deadline part of ctx.signal, so a handler stops before starting work it
// cannot finish in time, and transactions bound statement_timeout by the time left.
import { AppError } from "../../errors";
import type { Middleware } from "../context";

export const deadlineMiddleware: Middleware = (next) => async (request, ctx) => {
  if (ctx.deadline === undefined) return next(request, ctx);
  const remaining = ctx.deadline - Date.now();
  if (remaining <= 0) throw new AppError("deadline_exceeded", "the deadline passed before the call started");
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new AppError("deadline_exceeded", "the deadline passed")), remaining);
  const onCancel = () => controller.abort(ctx.signal.reason);
  if (ctx.signal.aborted) onCancel();
  else ctx.signal.addEventListener("abort", onCancel, { once: true });
  const outer = ctx.signal;
  ctx.signal = controller.signal;
  try {
    return await next(request, ctx);
  } finally {
    clearTimeout(timer);
    outer.removeEventListener("abort", onCancel);
  }
};

/** Throws if the call was cancelled or ran out of time: check before each step with outside effects. */
export function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) {
    const reason: unknown = signal.reason;
    throw reason instanceof AppError ? reason : new AppError("cancelled", "the call was cancelled");
  }
}
