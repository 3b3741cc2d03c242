// Mints the JWTs the credential tests present: session tokens as Login signs them and service
// JWTs as API_JWT_SECRET holders sign them, each with the changes a test needs (another key,
// algorithm, expiry, claims), and forgeries made from a real token (`alg: none`, a tampered
// payload). test/credentials.test.ts uses them over gRPC, test/rest-authz.test.ts over REST.
import { SignJWT } from "jose";
import { z } from "zod";
import type { DatabasePool } from "slonik";
import { sql } from "../../src/db/sql";
import { TEST_API_JWT_SECRET, TEST_API_KEY, TEST_SESSION_SECRET } from "./app";
import type { CallOptions } from "./clients";

/** base64url of a JSON value, as a JWT header or payload. */
export const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString("base64url");
/** An HMAC key from a secret, as jose takes it. */
export const jwtKey = (secret: string): Uint8Array => new TextEncoder().encode(secret);
/** Now, in JWT seconds. */
export const now = (): number => Math.floor(Date.now() / 1000);

/** The id of the seeded superuser `admin`, the subject of a session token by default. */
export async function superuserId(pool: DatabasePool): Promise<string> {
  return pool.oneFirst(sql.type(z.object({ id: z.string() }))`SELECT id FROM users WHERE tenant IS NULL AND username = 'admin'`);
}

export interface SessionTokenOptions {
  /** The user the token names. */
  sub: string;
  claims?: Record<string, unknown>;
  alg?: string;
  secret?: string;
  exp?: number;
  /** Another audience than `qod-session`. */
  aud?: string;
  /** `null` leaves the jti out. */
  jti?: null;
  /** The header's `typ` (a session token's own type by default). */
  typ?: string;
}

/** A session token as Login makes it for the superuser `admin`, with the given changes. */
export function mintSessionToken(options: SessionTokenOptions): Promise<string> {
  const jwt = new SignJWT({ name: "admin", tenant: null, role: "admin", scope: "superuser", ...options.claims })
    .setProtectedHeader({ alg: options.alg ?? "HS256", typ: options.typ ?? "qod-session+jwt" })
    .setIssuer("qod")
    .setAudience(options.aud ?? "qod-session")
    .setSubject(options.sub)
    .setIssuedAt()
    .setExpirationTime(options.exp ?? now() + 600);
  if (options.jti !== null) jwt.setJti(`test-${Math.random()}`);
  return jwt.sign(jwtKey(options.secret ?? TEST_SESSION_SECRET));
}

/** A service JWT (subject `billing`) signed with API_JWT_SECRET; `exp: null` leaves exp out, `typ: null` the header's type. */
export function mintServiceToken(
  claims: Record<string, unknown> = {},
  options: { alg?: string; secret?: string; exp?: number | null; typ?: string | null } = {},
): Promise<string> {
  const typ = options.typ === null ? {} : { typ: options.typ ?? "JWT" };
  const jwt = new SignJWT({ role: "service_role", ...claims }).setProtectedHeader({ alg: options.alg ?? "HS256", ...typ }).setSubject("billing");
  if (options.exp !== null) jwt.setExpirationTime(options.exp ?? now() + 600);
  return jwt.sign(jwtKey(options.secret ?? TEST_API_JWT_SECRET));
}

/** The token's payload under an `alg: none` header and no signature. */
export function withAlgNone(token: string): string {
  const [, payload] = token.split(".");
  return `${b64({ alg: "none", typ: "JWT" })}.${payload}.`;
}

/** The token with claims of its payload changed and its original signature kept. */
export function withTamperedPayload(token: string, changes: Record<string, unknown>): string {
  const [header, payload, signature] = token.split(".");
  const claims = JSON.parse(Buffer.from(payload ?? "", "base64url").toString()) as Record<string, unknown>;
  return `${header}.${b64({ ...claims, ...changes })}.${signature}`;
}

/**
 * Session tokens that must be refused, one entry per way a token can be bad; the gRPC and the
 * REST credential tests both run this table. `sessionToken` mints a valid token with overrides.
 */
export function badSessionCredentials(sessionToken: (options?: Partial<SessionTokenOptions>) => Promise<string>): [string, () => Promise<{ apiKey?: string; bearer?: string }[]>][] {
  return [
    ["an expired token", async () => [{ apiKey: await sessionToken({ exp: now() - 10 }) }]],
    [
      "a token signed with another key",
      async () => [
        { apiKey: await sessionToken({ secret: "another-secret-another-secret-0123456789" }) },
        { apiKey: await sessionToken({ secret: TEST_API_JWT_SECRET }) },
      ],
    ],
    ["`alg: none`, in X-API-Key and as a Bearer token", async () => {
      const token = await sessionToken();
      return [{ apiKey: withAlgNone(token) }, { bearer: withAlgNone(token) }];
    }],
    ["another algorithm, even with the right secret", async () => [{ apiKey: await sessionToken({ alg: "HS512" }) }]],
    ["a tampered payload", async () => {
      const token = await sessionToken({ claims: { role: "user" } });
      return [{ apiKey: withTamperedPayload(token, { role: "admin" }) }, { apiKey: withTamperedPayload(token, { exp: now() + 999_999 }) }];
    }],
    [
      "a token without jti, for another audience, or naming no user",
      async () => [
        { apiKey: await sessionToken({ jti: null }) },
        { apiKey: await sessionToken({ aud: "other" }) },
        { apiKey: await sessionToken({ sub: "u-00000000000000000000000000000000" }) },
      ],
    ],
  ];
}

/** Credentials that are no credential at all: none, a wrong static key, garbage, other schemes. */
export const GARBAGE_CREDENTIALS: readonly CallOptions[] = [
  {},
  { apiKey: `${TEST_API_KEY}x` },
  { apiKey: "not-a-token" },
  { headers: { authorization: `Basic ${Buffer.from("admin:admin").toString("base64")}` } },
  { headers: { authorization: "Bearer" } },
  { bearer: "a.b.c" },
];
