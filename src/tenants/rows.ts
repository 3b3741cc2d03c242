// Row schemas of the tenants table and their mapping to the API's Tenant.
import { z } from "zod";
import type { Tenant } from "../../gen/qod/v1/tenant";
import { banHolds } from "../data-plane";

/** Who authenticates a tenant's users: `db` (bcrypt users of this service) or an OIDC provider. */
export const AUTH_PROVIDERS = ["db", "keycloak", "google", "azure", "aws"] as const;
export type AuthProvider = (typeof AUTH_PROVIDERS)[number];
export type OidcProvider = Exclude<AuthProvider, "db">;

export const TenantRow = z.object({
  name: z.string(),
  display_name: z.string(),
  disabled: z.boolean(),
  auth_provider: z.enum(AUTH_PROVIDERS),
  auth_config: z.record(z.string()),
  created_at: z.number(),
  updated_at: z.number(),
  pools: z.array(z.string()),
  banned_at: z.number().nullable(),
  ban_reason: z.string().nullable(),
  banned_until: z.number().nullable(),
});
export type TenantRow = z.infer<typeof TenantRow>;

export function toTenant(row: TenantRow, now = Date.now()): Tenant {
  const banned = banHolds(row.banned_at, row.banned_until, now);
  return {
    name: row.name,
    id: row.name,
    displayName: row.display_name,
    pools: row.pools,
    disabled: row.disabled,
    authProvider: row.auth_provider,
    authConfig: row.auth_config,
    createTime: new Date(row.created_at),
    updateTime: new Date(row.updated_at),
    banned,
    banReason: banned ? (row.ban_reason ?? "") : "",
    bannedUntil: banned && row.banned_until !== null ? new Date(row.banned_until) : undefined,
  };
}

/** What other domains read of a tenant (tenants/index.ts findTenant). */
export interface TenantRef {
  name: string;
  disabled: boolean;
  authProvider: AuthProvider;
  authConfig: Record<string, string>;
}

export function toTenantRef(row: TenantRow): TenantRef {
  return { name: row.name, disabled: row.disabled, authProvider: row.auth_provider, authConfig: row.auth_config };
}
