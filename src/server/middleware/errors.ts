// Normalises whatever a handler throws into an AppError: known database errors by constraint,
// an aborted call into CANCELLED or DEADLINE_EXCEEDED, anything else into INTERNAL with a fixed
// message (the cause is logged, never sent).
import { AppError } from "../../errors";
import { mapDatabaseError } from "../../db/errors";
import type { Middleware } from "../context";

export const errorsMiddleware: Middleware = (next) => async (request, ctx) => {
  try {
    return await next(request, ctx);
  } catch (thrown) {
    const mapped = mapDatabaseError(thrown);
    if (mapped instanceof AppError) throw mapped;
    const aborted = ctx.abortReason;
    if (aborted) throw aborted;
    ctx.log.error({ err: thrown }, "unexpected error");
    throw new AppError("internal", "internal error", [], { cause: thrown });
  }
};
