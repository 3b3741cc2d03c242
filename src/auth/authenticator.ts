// Turns a call's credential into a Principal (SPEC §5). `x-api-key` holds the static key
// (compared in constant time), a personal access token (`qod_pat_…`) or a session token;
// `Authorization: Bearer` holds a session token or a service JWT signed with API_JWT_SECRET:
// the token's header type picks the one verifier it is checked by, and a token that fails it is
// refused, never tried as the other kind (tokens.ts). When x-api-key is present it alone
// decides. Every failure is the same `undefined`, so the client never learns which check failed.
import { hash, timingSafeEqual } from "node:crypto";
import type { CallContext } from "../call/context";
import { metadataValue } from "../call/metadata";
import type { Principal } from "../call/principal";
import type { AuthDeps } from "./deps";
import { API_KEY_PRINCIPAL, servicePrincipal, userPrincipal } from "./principal";
import { findAccessTokenAccount, findSessionAccount, touchAccessToken } from "./queries";
import { isAccessToken, jwtKind, presentedAccessTokenHash } from "./tokens";

// Digests have one length, so timingSafeEqual can compare any two keys in constant time.
const digest = (value: string) => hash("sha256", value, "buffer");

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

export interface Authenticator {
  /** The principal for the call's credential, or undefined when it has none that is valid. */
  authenticate(ctx: CallContext): Promise<Principal | undefined>;
}

export function createAuthenticator(deps: Pick<AuthDeps, "pool" | "config" | "sessions" | "verifyServiceToken">): Authenticator {
  const { pool, config, sessions } = deps;
  // The configured key's digest is computed once, not on every call.
  const apiKeyDigest = config.apiKey ? digest(config.apiKey) : undefined;

  async function sessionPrincipal(token: string): Promise<Principal | undefined> {
    const claims = await sessions.verify(token);
    if (!claims) return undefined;
    // Revoked, ended by a password change, user deleted, or tenant disabled: it no longer counts.
    const account = await findSessionAccount(pool, claims);
    return account ? userPrincipal(account, "session", { sessionId: claims.jti, expiresAt: claims.expiresAt }) : undefined;
  }

  async function accessTokenPrincipal(token: string): Promise<Principal | undefined> {
    const hash = presentedAccessTokenHash(token);
    if (!hash) return undefined;
    const account = await findAccessTokenAccount(pool, hash);
    if (!account) return undefined;
    if (account.use_is_stale) await touchAccessToken(pool, account.token_id);
    return userPrincipal(account, "access_token", { expiresAt: account.expires_at });
  }

  async function servicePrincipalOf(token: string): Promise<Principal | undefined> {
    const claims = await deps.verifyServiceToken(token);
    return claims ? servicePrincipal(claims.subject, claims.expiresAt) : undefined;
  }

  return {
    async authenticate(ctx) {
      const key = metadataValue(ctx.metadata, "x-api-key");
      if (key !== undefined) {
        if (apiKeyDigest && timingSafeEqual(digest(key), apiKeyDigest)) return API_KEY_PRINCIPAL;
        return isAccessToken(key) ? accessTokenPrincipal(key) : sessionPrincipal(key);
      }
      const bearer = BEARER.exec(metadataValue(ctx.metadata, "authorization") ?? "")?.[1];
      if (bearer === undefined) return undefined;
      switch (jwtKind(bearer)) {
        case "session":
          return sessionPrincipal(bearer);
        case "service":
          return servicePrincipalOf(bearer);
        default:
          return undefined;
      }
    },
  };
}
