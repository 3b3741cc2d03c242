// Establishes ctx.principal for every method that needs a credential. The methods that need
// none come from the one list in call/public-methods.ts; handlers never decide.
import type { Middleware } from "../../call/context";
import { PUBLIC_METHOD_PATHS } from "../../call/public-methods";
import type { Authenticator } from "../../auth";
import { AppError } from "../../errors";

export function authenticateMiddleware(authenticator: Authenticator): Middleware {
  return (next) => async (request, ctx) => {
    if (PUBLIC_METHOD_PATHS.has(ctx.method)) return next(request, ctx);
    const principal = await authenticator.authenticate(ctx);
    // One answer for every failure: no hint of which check failed.
    if (!principal) throw new AppError("unauthenticated", "a valid credential is required");
    ctx.principal = principal; // the call's logger, made on first use, is then bound to its subject
    return next(request, ctx);
  };
}
