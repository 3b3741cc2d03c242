// Verifies ID tokens from an OIDC tenant's issuer: discovery of its JWKS (cached per issuer; a
// failed discovery is remembered briefly, so a dead or hostile issuer is not fetched on every
// call), signature, `iss`, `aud` (the tenant's clientId, required: without it a token minted for
// any other application of the issuer would pass), `exp`, and the provider's tenant claim.
// Fetches go through the SSRF guard of outbound.ts.
import { createRemoteJWKSet, customFetch, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from "jose";
import { z } from "zod";
import type { OidcProvider, TenantRef } from "../tenants";
import { createGuardedFetch, OutboundRefused } from "./outbound";

/** Why a token was refused, for the log (never sent: the client only learns it was refused). */
export class OidcRejected extends Error {}

const Discovery = z.object({ issuer: z.string(), jwks_uri: z.string().url() });
/** ID tokens are signed with the issuer's private key; shared-secret algorithms are refused. */
const ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"];
const FETCH_TIMEOUT_MS = 5000;
/** Discovery documents rarely change; re-read them hourly. Keys are refreshed by jose. */
const DISCOVERY_TTL_MS = 3600_000;
/** How long a failed discovery is answered from memory before the issuer is tried again. */
export const DISCOVERY_FAILURE_TTL_MS = 30_000;

const text = (payload: JWTPayload, claim: string): string | undefined => {
  const value = payload[claim];
  return typeof value === "string" && value !== "" ? value : undefined;
};

/**
 * Each provider's tenant rule: a check of the tenant's configuration (the issuer itself is
 * compared exactly by jwtVerify) and of the token's claims.
 */
const PROVIDER_RULES: Record<OidcProvider, (config: Record<string, string>, payload: JWTPayload) => boolean> = {
  keycloak: (config) => new URL(config.issuer ?? "").pathname.replace(/\/$/, "").endsWith(`/realms/${config.realm}`),
  google: (config, payload) => text(payload, "hd") === config.hd,
  azure: (config, payload) => text(payload, "tid") === config.tenantId,
  aws: (config, payload) => (config.issuer ?? "").replace(/\/$/, "").endsWith(`/${config.userPoolId}`) && text(payload, "token_use") === "id",
};

/**
 * The name an ID token vouches for: `preferred_username`, else `email` when the issuer says it
 * is verified (an unverified address proves nothing).
 */
function usernameOf(payload: JWTPayload): string | undefined {
  return text(payload, "preferred_username") ?? (payload.email_verified === true ? text(payload, "email") : undefined);
}

export interface OidcVerifier {
  /** The username the token vouches for in this tenant; throws OidcRejected otherwise. */
  verify(tenant: Pick<TenantRef, "authProvider" | "authConfig">, idToken: string): Promise<string>;
}

export function createOidcVerifier(options: { allowInsecure: boolean }): OidcVerifier {
  const fetch = createGuardedFetch(options);
  const keySets = new Map<string, { at: number; keys: Promise<JWTVerifyGetKey>; failed?: boolean }>();

  async function discover(issuer: string): Promise<JWTVerifyGetKey> {
    const response = await fetch(`${issuer.replace(/\/$/, "")}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
    if (response.status !== 200) throw new OidcRejected(`discovery answered HTTP ${response.status}`);
    const document = Discovery.safeParse(await response.json());
    if (!document.success) throw new OidcRejected("the discovery document is malformed");
    if (document.data.issuer !== issuer) throw new OidcRejected("the discovery document names another issuer");
    return createRemoteJWKSet(new URL(document.data.jwks_uri), {
      timeoutDuration: FETCH_TIMEOUT_MS,
      [customFetch]: (url, init) => fetch(url, { signal: init.signal }),
    });
  }

  /** Shared by concurrent calls; a failed discovery is kept DISCOVERY_FAILURE_TTL_MS, then retried. */
  function keysFor(issuer: string): Promise<JWTVerifyGetKey> {
    const cached = keySets.get(issuer);
    if (cached && Date.now() - cached.at < (cached.failed ? DISCOVERY_FAILURE_TTL_MS : DISCOVERY_TTL_MS)) return cached.keys;
    const keys = discover(issuer);
    const entry: { at: number; keys: Promise<JWTVerifyGetKey>; failed?: boolean } = { at: Date.now(), keys };
    keySets.set(issuer, entry);
    keys.catch(() => {
      entry.at = Date.now();
      entry.failed = true;
    });
    return keys;
  }

  return {
    async verify(tenant, idToken) {
      const rule = tenant.authProvider === "db" ? undefined : PROVIDER_RULES[tenant.authProvider];
      const { issuer, clientId } = tenant.authConfig;
      if (!rule || !issuer) throw new OidcRejected("the tenant does not use an OIDC provider");
      // Without the audience to check, a token the issuer made for any other application would pass.
      if (!clientId) throw new OidcRejected("the tenant names no clientId: no ID token is accepted until it does");
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(idToken, await keysFor(issuer), {
          issuer,
          audience: clientId,
          algorithms: ALGORITHMS,
          requiredClaims: ["exp"],
        }));
      } catch (err) {
        if (err instanceof errors.JOSEError || err instanceof OutboundRefused) throw new OidcRejected(err.message);
        if (err instanceof OidcRejected) throw err;
        // Network failures reaching the issuer: the token cannot be checked, so it is refused.
        throw new OidcRejected(`the issuer could not be reached (${err instanceof Error ? err.name : "error"})`);
      }
      if (!rule(tenant.authConfig, payload)) throw new OidcRejected(`the token fails the ${tenant.authProvider} tenant rule`);
      const username = usernameOf(payload);
      if (!username) throw new OidcRejected("the token names no preferred_username or verified email");
      return username;
    },
  };
}
