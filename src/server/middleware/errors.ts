// Normalises whatever a handler throws into an AppError: what `known` recognises (the state
// database's errors, db/errors.ts, given by app.ts), an aborted call into CANCELLED or
// DEADLINE_EXCEEDED, anything else into INTERNAL with a fixed message (the cause is logged,
// never sent).
import type { Middleware } from "../../call/context";
import { AppError } from "../../errors";

/** Turns an error it recognises into an AppError; returns anything else as it was. */
export type ErrorMapper = (err: unknown) => unknown;

export function errorsMiddleware(known: ErrorMapper): Middleware {
  return (next) => async (request, ctx) => {
    try {
      return await next(request, ctx);
    } catch (thrown) {
      const mapped = known(thrown);
      if (mapped instanceof AppError) throw mapped;
      const aborted = ctx.abortReason;
      if (aborted) throw aborted;
      ctx.log.error({ err: thrown }, "unexpected error");
      throw new AppError("internal", "internal error", [], { cause: thrown });
    }
  };
}
