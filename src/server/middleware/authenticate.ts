// Establishes ctx.principal for every method that needs a credential. The methods that need
// none are listed here and nowhere else; handlers never decide.
import { AppError } from "../../errors";
import type { Principal } from "../../auth/principal";
import type { CallContext, Middleware } from "../context";

/** Methods callable without a credential (health and reflection are not behind this chain). */
export const PUBLIC_METHODS: ReadonlySet<string> = new Set([
  "/qod.v1.AuthService/Login",
  "/qod.v1.AuthService/ExchangeOidcToken",
]);

export interface Authenticator {
  /** The principal for the call's credential, or undefined when it has none that is valid. */
  authenticate(ctx: CallContext): Promise<Principal | undefined>;
}

export function authenticateMiddleware(authenticator: Authenticator): Middleware {
  return (next) => async (request, ctx) => {
    if (PUBLIC_METHODS.has(ctx.method)) return next(request, ctx);
    const principal = await authenticator.authenticate(ctx);
    // One answer for every failure: no hint of which check failed.
    if (!principal) throw new AppError("unauthenticated", "a valid credential is required");
    ctx.principal = principal; // the call's logger, made on first use, is then bound to its subject
    return next(request, ctx);
  };
}
