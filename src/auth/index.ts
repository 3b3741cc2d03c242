// What other parts of the service use of the auth domain.
export { createAuthenticator, type Authenticator } from "./authenticator";
export { createAuthDeps, type AuthDeps } from "./deps";
export { authHandlers } from "./handlers";
export { seedAdmin } from "./seed";
