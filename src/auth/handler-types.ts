// The type of AuthService's handlers, which session-, user- and access-token-handlers.ts each
// implement part of (handlers.ts puts them together).
import type { AuthServiceService } from "../../gen/qod/v1/auth";
import type { ServiceHandlers } from "../call/context";
import type { PublicMethodsOf } from "../call/public-methods";

export type AuthHandlers = ServiceHandlers<typeof AuthServiceService, PublicMethodsOf<"auth">>;
