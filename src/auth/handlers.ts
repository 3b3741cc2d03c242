// AuthService: authorize → validate → one transaction → map, split by concern.
import type { AuthServiceService } from "../../gen/qod/v1/auth";
import type { ServiceHandlers } from "../server/unary";
import type { AuthDeps } from "./deps";
import { accessTokenHandlers } from "./access-token-handlers";
import { sessionHandlers } from "./session-handlers";
import { userHandlers } from "./user-handlers";

/** Login and the OIDC exchange are how a caller gets a credential, so they need none. */
export type AuthHandlers = ServiceHandlers<typeof AuthServiceService, "login" | "exchangeOidcToken">;

export function authHandlers(deps: AuthDeps): AuthHandlers {
  return { ...sessionHandlers(deps), ...userHandlers(deps), ...accessTokenHandlers(deps) };
}
