// What the auth handlers and the authenticator share, built once per app from the config.
import type { DatabasePool } from "slonik";
import { clientAddressRule } from "../call/client-address";
import type { Config } from "../config";
import type { Metrics } from "../metrics";
import { createOidcVerifier, type OidcVerifier } from "./oidc";
import { createPasswords, type Passwords } from "./passwords";
import { createLoginThrottle, type LoginThrottle } from "./throttle";
import { createServiceTokenVerifier, createSessionTokens, type SessionTokens, type VerifiedService } from "./tokens";

export interface AuthDeps {
  pool: DatabasePool;
  config: Readonly<Config>;
  passwords: Passwords;
  sessions: SessionTokens;
  verifyServiceToken(token: string): Promise<VerifiedService | undefined>;
  throttle: LoginThrottle;
  oidc: OidcVerifier;
}

export function createAuthDeps(pool: DatabasePool, config: Readonly<Config>, { loginThrottled }: Pick<Metrics, "loginThrottled">): AuthDeps {
  // main.ts generates a secret when none is given; an app without one cannot sign sessions.
  if (!config.sessionJwtSecret) throw new Error("QOD_SESSION_JWT_SECRET is not set");
  return {
    pool,
    config,
    passwords: createPasswords({
      cost: config.bcryptCost,
      running: config.bcryptConcurrency,
      waiting: config.bcryptQueue,
      onRefused: () => loginThrottled.inc({ scope: "busy" }),
    }),
    sessions: createSessionTokens(config.sessionJwtSecret, config.sessionTtlSec),
    verifyServiceToken: createServiceTokenVerifier(config.apiJwtSecret),
    throttle: createLoginThrottle(pool, clientAddressRule(config.trustedProxies), { maxFailures: config.loginMaxFailures, windowSec: config.loginWindowSec }, () =>
      loginThrottled.inc({ scope: "failures" }),
    ),
    oidc: createOidcVerifier({ allowInsecure: config.oidcAllowInsecure }),
  };
}
