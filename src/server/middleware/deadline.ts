// The client's deadline: a call whose deadline has already passed is refused before any work.
// While it runs, ctx.abortReason says when the call was cancelled or its deadline has passed
// (call/deadline.ts), so a handler stops before starting work it cannot finish in time, and
// transactions bound statement_timeout by the time left (db/transaction.ts).
import type { Middleware } from "../../call/context";
import { AppError } from "../../errors";

export const deadlineMiddleware: Middleware = (next) => async (request, ctx) => {
  if (ctx.deadline !== undefined && ctx.deadline - Date.now() <= 0) {
    throw new AppError("deadline_exceeded", "the deadline passed before the call started");
  }
  return next(request, ctx);
};
