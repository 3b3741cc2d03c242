// Cancellation and deadlines as handlers and state work see them: check before each step with
// outside effects, never start work after the call was cancelled or ran out of time.
import { AppError } from "../errors";
import type { CallContext } from "./context";

/** What bounds state work: the call's deadline and whether it was aborted. */
export type CallBounds = Pick<CallContext, "abortReason" | "deadline">;

export const deadlineExceeded = (): AppError => new AppError("deadline_exceeded", "the deadline passed");
export const cancelled = (): AppError => new AppError("cancelled", "the call was cancelled");

/** Throws if the call was cancelled or ran out of time. */
export function throwIfAborted(call: Pick<CallContext, "abortReason">): void {
  const reason = call.abortReason;
  if (reason) throw reason;
}

/** An aborted signal's reason as the AppError the client gets. */
export function abortError(signal: AbortSignal): AppError {
  const reason: unknown = signal.reason;
  return reason instanceof AppError ? reason : cancelled();
}
