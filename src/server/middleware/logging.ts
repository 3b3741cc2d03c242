// One log line per call, with its request id, outcome and duration. A successful call logs at
// debug, so at the default level it logs nothing and its logger is never made (see server/call-state.ts).
import { performance } from "node:perf_hooks";
import { status } from "@grpc/grpc-js";
import type { Logger } from "pino";
import { AppError } from "../../errors";
import type { Middleware } from "../../call/context";

/** `logger` is the base the calls' loggers derive from: its level decides whether successes log. */
export function loggingMiddleware(logger: Pick<Logger, "isLevelEnabled">): Middleware {
  return (next) => async (request, ctx) => {
    const started = performance.now();
    try {
      const response = await next(request, ctx);
      if (logger.isLevelEnabled("debug")) ctx.log.debug({ code: "OK", ms: performance.now() - started, subject: ctx.principal?.subject }, "call");
      return response;
    } catch (err) {
      const code = err instanceof AppError ? err.code : status.INTERNAL;
      const reason = err instanceof AppError ? err.reason : "internal";
      const level = code === status.INTERNAL || code === status.UNAVAILABLE ? "warn" : "info";
      ctx.log[level]({ code: status[code], reason, ms: performance.now() - started, subject: ctx.principal?.subject }, "call failed");
      throw err;
    }
  };
}
