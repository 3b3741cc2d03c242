// What other parts of the service use of the tenants domain.
import type { CommonQueryMethods } from "slonik";
import { findTenantByName } from "./queries";
import { toTenantRef, type TenantRef } from "./rows";

export { ALL_TENANTS, createTenantCache, TENANT_CHANNEL, type TenantCache } from "./cache";
export { tenantHandlers } from "./handlers";
export { AUTH_PROVIDERS, type AuthProvider, type OidcProvider, type TenantRef } from "./rows";

/** A tenant by name, as other domains need it; null when there is none. */
export async function findTenant(db: CommonQueryMethods, name: string): Promise<TenantRef | null> {
  const row = await findTenantByName(db, name);
  return row && toTenantRef(row);
}
