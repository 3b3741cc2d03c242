// AuthService: authorize → validate → one statement or transaction → map, split by concern.
import type { AuthDeps } from "./deps";
import type { AuthHandlers } from "./handler-types";
import { accessTokenHandlers } from "./access-token-handlers";
import { sessionHandlers } from "./session-handlers";
import { userHandlers } from "./user-handlers";

export function authHandlers(deps: AuthDeps): AuthHandlers {
  return { ...sessionHandlers(deps), ...userHandlers(deps), ...accessTokenHandlers(deps) };
}
