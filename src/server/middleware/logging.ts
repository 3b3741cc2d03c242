// One log line per finished call: what was called, on which surface, by whom, for which tenant,
// its status and reason, and how long it took. Info for answers a client caused or got (OK,
// NOT_FOUND, …), warn for INTERNAL and UNAVAILABLE, which an operator must look at.
import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import type { CallContext, Middleware } from "../../call/context";
import { NAME_PATTERN, normalizeName } from "../../validation";
import { failedOutcome } from "./outcome";

const NEEDS_A_LOOK = new Set(["INTERNAL", "UNAVAILABLE"]);

/**
 * The tenant a call acts on: the caller's own when it belongs to one, else the one the request
 * names (`tenant`, Supavisor's `external_id`, or a TenantService request's `name`) if it is a
 * valid tenant name: the line runs before validation, and must not carry whatever was sent.
 */
function tenantOf(request: unknown, ctx: CallContext): string | undefined {
  if (ctx.principal?.tenant) return ctx.principal.tenant;
  if (typeof request !== "object" || request === null) return undefined;
  const fields = request as { tenant?: unknown; externalId?: unknown; name?: unknown };
  const named = fields.tenant ?? fields.externalId ?? (ctx.method.startsWith("/qod.v1.TenantService/") ? fields.name : undefined);
  if (typeof named !== "string") return undefined;
  const name = normalizeName(named);
  return NAME_PATTERN.test(name) ? name : undefined;
}

/** `logger` is the service's base logger; the line carries every key itself, each once. */
export function loggingMiddleware(base: Logger): Middleware {
  // The line's keys are these fixed ones and hold no secret, so it skips the redaction of the
  // base logger, whose wildcard paths cost about 20 µs a line: more than the rest of a GetTenant.
  const logger = base.child({}, { redact: { paths: [] } });
  return (next) => async (request, ctx) => {
    const started = performance.now();
    const line = (code: string, reason?: string) => ({
      requestId: ctx.requestId,
      method: ctx.method,
      surface: ctx.surface,
      code,
      ...(reason !== undefined && { reason }),
      ms: Math.round((performance.now() - started) * 100) / 100,
      principal: ctx.principal?.credential ?? "none",
      ...(ctx.principal && { subject: ctx.principal.subject }),
      tenant: tenantOf(request, ctx),
    });
    try {
      const response = await next(request, ctx);
      if (logger.isLevelEnabled("info")) logger.info(line("OK"), "call");
      return response;
    } catch (err) {
      const { code, reason } = failedOutcome(err);
      logger[NEEDS_A_LOOK.has(code) ? "warn" : "info"](line(code, reason), "call failed");
      throw err;
    }
  };
}
