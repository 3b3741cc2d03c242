// Who is calling, and the scope checks every handler runs before any lookup (SPEC §5).
import { AppError } from "../errors";

export type CredentialKind = "api_key" | "session" | "access_token" | "service_jwt";

export interface Principal {
  readonly credential: CredentialKind;
  /** Username, or a fixed name for the static key and the service JWT's subject. */
  readonly subject: string;
  /** The database user behind a session or access token. */
  readonly userId?: string;
  /** The tenant of a tenant user; undefined for superusers and service credentials. */
  readonly tenant?: string;
  readonly role: "admin" | "user";
  readonly superuser: boolean;
  /** The session token's `jti` (for Logout). */
  readonly sessionId?: string;
  /** When the credential stops being valid (epoch ms), when it has an end. */
  readonly expiresAt?: number;
}

export const API_KEY_PRINCIPAL: Principal = Object.freeze({
  credential: "api_key",
  subject: "api-key",
  role: "admin",
  superuser: true,
});

export function requireSuperuser(principal: Principal): void {
  if (!principal.superuser) throw new AppError("superuser_required", "this operation requires a superuser");
}

/**
 * Superusers act on every tenant; a tenant admin only on its own. Another tenant's name is
 * refused whether or not that tenant exists, so nothing about it leaks.
 */
export function requireTenantAdmin(principal: Principal, tenant: string): void {
  if (principal.superuser) return;
  if (principal.tenant !== tenant.toLowerCase()) {
    throw new AppError("tenant_forbidden", "the caller has no access to this tenant");
  }
  if (principal.role !== "admin") throw new AppError("admin_required", "this operation requires a tenant admin");
}

/** Tenants the caller may see in lists; undefined means all of them. */
export function visibleTenants(principal: Principal): readonly string[] | undefined {
  if (principal.superuser) return undefined;
  return principal.tenant && principal.role === "admin" ? [principal.tenant] : [];
}
