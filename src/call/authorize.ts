// Every authorization rule (SPEC §5), as pure functions of the caller's principal. Handlers
// call these first, before validation or any lookup, so an answer never depends on what exists.
import { AppError } from "../errors";
import { normalizeName } from "../validation";
import type { Principal } from "./principal";

/** A principal backed by a database user (a session or a personal access token). */
export type UserPrincipal = Principal & { readonly userId: string };
/** A principal authenticated by a session token. */
export type SessionPrincipal = UserPrincipal & { readonly sessionId: string; readonly expiresAt: number };

export function requireSuperuser(principal: Principal): void {
  if (!principal.superuser) throw new AppError("superuser_required", "this operation requires a superuser");
}

/** Superusers and tenant admins; plain users may not. */
export function requireAdmin(principal: Principal): void {
  if (!principal.superuser && principal.role !== "admin") throw new AppError("admin_required", "this operation requires an admin");
}

/**
 * Superusers act on every tenant; a tenant admin only on its own. Another tenant's name is
 * refused whether or not that tenant exists, so nothing about it leaks. A plain user may not
 * manage even its own tenant.
 */
export function requireTenantAdmin(principal: Principal, tenant: string): void {
  if (principal.superuser) return;
  if (principal.tenant !== normalizeName(tenant)) {
    throw new AppError("tenant_forbidden", "the caller has no access to this tenant");
  }
  if (principal.role !== "admin") throw new AppError("admin_required", "this operation requires a tenant admin");
}

/** Users of a realm: an empty tenant names the superuser realm, which only superusers manage. */
export function requireRealmAdmin(principal: Principal, tenant: string): void {
  if (normalizeName(tenant) === "") requireSuperuser(principal);
  else requireTenantAdmin(principal, tenant);
}

/** Tenants the caller may see in lists; undefined means all of them. Plain users see none. */
export function visibleTenants(principal: Principal): readonly string[] | undefined {
  if (principal.superuser) return undefined;
  if (principal.role !== "admin" || !principal.tenant) throw new AppError("admin_required", "this operation requires a tenant admin");
  return [principal.tenant];
}

/** Tenants the caller administers, as WhoAmI and Login show them (empty for superusers: all). */
export function manageableTenants(principal: Principal): string[] {
  return !principal.superuser && principal.role === "admin" && principal.tenant ? [principal.tenant] : [];
}

/** The calling database user; the static key and service tokens have no account. */
export function requireUser(principal: Principal): UserPrincipal {
  if (principal.userId === undefined) {
    throw new AppError("invalid_credential", "this operation needs a user's session or access token");
  }
  return principal as UserPrincipal;
}

/**
 * A user's session. Access tokens are managed (and sessions logged out) only from a session,
 * so a leaked access token cannot mint further tokens.
 */
export function requireSession(principal: Principal): SessionPrincipal {
  if (principal.credential !== "session" || principal.userId === undefined || principal.sessionId === undefined) {
    throw new AppError("invalid_credential", "this operation needs a session token from Login");
  }
  return principal as SessionPrincipal;
}

/**
 * A password is changed only by its owner, who proves it with the current password; admins do
 * not reset others' passwords (they delete and re-create the user). Empty fields name the caller.
 * Another tenant's account is refused like any other tenant's object.
 */
export function requireOwnAccount(principal: Principal, tenant: string, username: string): UserPrincipal {
  const user = requireUser(principal);
  const realm = normalizeName(tenant);
  if (realm !== "" && realm !== (user.tenant ?? "")) {
    throw new AppError("tenant_forbidden", "the caller has no access to this tenant");
  }
  if (username !== "" && username.toLowerCase() !== user.subject.toLowerCase()) {
    throw new AppError("invalid_username", "a password can only be changed by its owner", [
      { field: "username", reason: "invalid_username", description: "must be the caller's own username, or empty" },
    ]);
  }
  return user;
}
