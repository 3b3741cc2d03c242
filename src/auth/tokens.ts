// The three token kinds: session JWTs we sign (HS256, QOD_SESSION_JWT_SECRET), service JWTs
// others sign (HS256, API_JWT_SECRET) and personal access tokens (random, stored as SHA-256).
// Verification pins the algorithm, so `alg: none` or a swapped algorithm never passes.
//
// The two JWT kinds are told apart by their own claims, never by which secret happens to verify
// them (RFC 8725 §3.11, explicit typing): a session token's header says `typ: qod-session+jwt`
// and its payload `iss: qod`, `aud: qod-session`, and its verifier requires all three; a service
// token's header says `typ: JWT` (as Supavisor requires), and its verifier refuses one that
// carries a session's issuer or audience. So a session token is never a service token, whatever
// the secrets (config.ts also refuses equal secrets).
import { hash, randomBytes, randomUUID } from "node:crypto";
import { decodeProtectedHeader, errors, jwtVerify, SignJWT } from "jose";
import { z } from "zod";
import type { AccountRef } from "./principal";

const ALGORITHM = "HS256";
export const SESSION_TOKEN_TYPE = "qod-session+jwt";
export const SESSION_ISSUER = "qod";
export const SESSION_AUDIENCE = "qod-session";
/** The header type of service JWTs (Supavisor's). */
const SERVICE_TOKEN_TYPE = "JWT";

// `epoch`: the account's session epoch when issued (absent in tokens older than it: epoch 0).
const SessionClaims = z.object({ sub: z.string().min(1), jti: z.string().min(1), exp: z.number(), epoch: z.number().int().default(0) });
const ServiceClaims = z.object({
  sub: z.string().min(1).max(200).optional(),
  exp: z.number(),
  iss: z.unknown().refine((iss) => iss !== SESSION_ISSUER),
  aud: z.unknown().refine((aud) => aud !== SESSION_AUDIENCE && !(Array.isArray(aud) && aud.includes(SESSION_AUDIENCE))),
});

/** Verification failures, as opposed to bugs, which must still surface. */
const isRejection = (err: unknown): boolean => err instanceof errors.JOSEError;

export interface IssuedSession {
  token: string;
  jti: string;
  /** Epoch ms. */
  expiresAt: number;
}

export interface VerifiedSession {
  userId: string;
  jti: string;
  /** The account's session epoch when the token was issued. */
  epoch: number;
  /** Epoch ms. */
  expiresAt: number;
}

export interface SessionTokens {
  /** A session of `account`, tied to its current session epoch. */
  issue(account: AccountRef, epoch: number): Promise<IssuedSession>;
  /** The claims of a well-signed, unexpired session token, or undefined. Revocation is the caller's check. */
  verify(token: string): Promise<VerifiedSession | undefined>;
}

/** For other readers of the token; the service itself trusts the user row, not these claims. */
function scopeOf(account: AccountRef): string {
  if (account.tenant === null) return "superuser";
  return account.role === "admin" ? "tenant_admin" : "tenant_user";
}

export function createSessionTokens(secret: string, ttlSec: number): SessionTokens {
  const key = new TextEncoder().encode(secret);
  return {
    async issue(account, epoch) {
      const jti = randomUUID();
      const now = Math.floor(Date.now() / 1000);
      const exp = now + ttlSec;
      const token = await new SignJWT({ name: account.username, tenant: account.tenant, role: account.role, scope: scopeOf(account), epoch })
        .setProtectedHeader({ alg: ALGORITHM, typ: SESSION_TOKEN_TYPE })
        .setIssuer(SESSION_ISSUER)
        .setAudience(SESSION_AUDIENCE)
        .setSubject(account.id)
        .setJti(jti)
        .setIssuedAt(now)
        .setExpirationTime(exp)
        .sign(key);
      return { token, jti, expiresAt: exp * 1000 };
    },
    async verify(token) {
      try {
        const { payload } = await jwtVerify(token, key, {
          algorithms: [ALGORITHM],
          typ: SESSION_TOKEN_TYPE,
          issuer: SESSION_ISSUER,
          audience: SESSION_AUDIENCE,
          requiredClaims: ["exp", "jti", "sub"],
        });
        const claims = SessionClaims.safeParse(payload);
        if (!claims.success) return undefined;
        const { sub, jti, epoch, exp } = claims.data;
        return { userId: sub, jti, epoch, expiresAt: exp * 1000 };
      } catch (err) {
        if (isRejection(err)) return undefined;
        throw err;
      }
    },
  };
}

export interface VerifiedService {
  subject: string;
  /** Epoch ms. */
  expiresAt: number;
}

/**
 * Verifies Supavisor-style service JWTs: header `typ: JWT`, HS256, `exp` required (Supavisor
 * itself does not require it), and never a session's issuer or audience.
 */
export function createServiceTokenVerifier(secret: string | undefined): (token: string) => Promise<VerifiedService | undefined> {
  if (!secret) return async () => undefined;
  const key = new TextEncoder().encode(secret);
  return async (token) => {
    try {
      const { payload } = await jwtVerify(token, key, { algorithms: [ALGORITHM], typ: SERVICE_TOKEN_TYPE, requiredClaims: ["exp"] });
      const claims = ServiceClaims.safeParse(payload);
      return claims.success ? { subject: claims.data.sub ?? "service", expiresAt: claims.data.exp * 1000 } : undefined;
    } catch (err) {
      if (isRejection(err)) return undefined;
      throw err;
    }
  };
}

/**
 * Which verifier a JWT is for, read from its header's `typ` without trusting it: the chosen
 * verifier checks the header again together with the signature. Undefined when it is neither.
 */
export function jwtKind(token: string): "session" | "service" | undefined {
  let typ: unknown;
  try {
    ({ typ } = decodeProtectedHeader(token));
  } catch {
    return undefined;
  }
  if (typeof typ !== "string") return undefined;
  const normalized = typ.toLowerCase().replace(/^application\//, "");
  if (normalized === SESSION_TOKEN_TYPE) return "session";
  return normalized === SERVICE_TOKEN_TYPE.toLowerCase() ? "service" : undefined;
}

/** `qod_pat_` and 43 base64url characters (32 random bytes), as upstream QOD shows them. */
const ACCESS_TOKEN_PREFIX = "qod_pat_";
const ACCESS_TOKEN_PATTERN = /^qod_pat_[A-Za-z0-9_-]{43}$/;

export const isAccessToken = (credential: string): boolean => credential.startsWith(ACCESS_TOKEN_PREFIX);

/** What is stored: the token has 256 random bits, so a plain SHA-256 cannot be reversed. */
const accessTokenHash = (token: string): Buffer => hash("sha256", token, "buffer");

export function newAccessToken(): { token: string; hash: Buffer } {
  const token = `${ACCESS_TOKEN_PREFIX}${randomBytes(32).toString("base64url")}`;
  return { token, hash: accessTokenHash(token) };
}

/** The hash to look a presented token up by; undefined when it cannot be one of ours. */
export function presentedAccessTokenHash(credential: string): Buffer | undefined {
  return ACCESS_TOKEN_PATTERN.test(credential) ? accessTokenHash(credential) : undefined;
}
