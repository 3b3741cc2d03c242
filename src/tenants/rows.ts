// Row schemas of the tenants table and their mapping to the API's Tenant.
import { z } from "zod";
import type { Tenant } from "../../gen/qod/v1/tenant";

export const TenantRow = z.object({
  name: z.string(),
  display_name: z.string(),
  disabled: z.boolean(),
  auth_provider: z.string(),
  auth_config: z.record(z.string()),
  created_at: z.number(),
  updated_at: z.number(),
  pools: z.array(z.string()),
});
export type TenantRow = z.infer<typeof TenantRow>;

export function toTenant(row: TenantRow): Tenant {
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
  };
}
