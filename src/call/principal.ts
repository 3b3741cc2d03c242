// Who is calling, as the authenticated context carries it. The rules that read it (scopes and
// checks) are in call/authorize.ts; this is only the shape, so every layer can name it.

/** A database user's role: `admin` administers its tenant (or, without a tenant, everything). */
export const ROLES = ["admin", "user"] as const;
export type Role = (typeof ROLES)[number];

/** How the caller proved who it is. */
export const CREDENTIAL_KINDS = ["api_key", "session", "access_token", "service_jwt"] as const;
export type CredentialKind = (typeof CREDENTIAL_KINDS)[number];

export interface Principal {
  readonly credential: CredentialKind;
  /** Username, or a fixed name for the static key and the service JWT's subject. */
  readonly subject: string;
  /** The database user behind a session or access token. */
  readonly userId?: string;
  /** The tenant of a tenant user; undefined for superusers and service credentials. */
  readonly tenant?: string;
  readonly role: Role;
  readonly superuser: boolean;
  /** The session token's `jti` (for Logout). */
  readonly sessionId?: string;
  /** When the credential stops being valid (epoch ms), when it has an end. */
  readonly expiresAt?: number;
}
