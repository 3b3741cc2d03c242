// The principal each kind of credential stands for. The rules that read a principal are in
// call/authorize.ts.
import type { UserPrincipal } from "../call/authorize";
import type { Principal, Role } from "../call/principal";

export const API_KEY_PRINCIPAL: Principal = Object.freeze({
  credential: "api_key",
  subject: "api-key",
  role: "admin",
  superuser: true,
});

/** A Supavisor-style service credential: it may do everything, as the static key may. */
export function servicePrincipal(subject: string, expiresAt: number): Principal {
  return Object.freeze({ credential: "service_jwt", subject, role: "admin", superuser: true, expiresAt });
}

export interface AccountRef {
  id: string;
  username: string;
  /** null for the superuser realm. */
  tenant: string | null;
  role: Role;
}

/** The principal of a database user; a superuser is an admin of the superuser realm. */
export function userPrincipal(
  account: AccountRef,
  credential: "session" | "access_token",
  extra: { sessionId?: string; expiresAt?: number } = {},
): UserPrincipal {
  return Object.freeze({
    credential,
    subject: account.username,
    userId: account.id,
    ...(account.tenant === null ? {} : { tenant: account.tenant }),
    role: account.role,
    superuser: account.tenant === null && account.role === "admin",
    ...extra,
  });
}
