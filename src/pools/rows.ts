// Row schema of the pools registry and its mapping to the API's Pool.
import { z } from "zod";
import type { Pool } from "../../gen/qod/v1/pool";

export const PoolRow = z.object({
  id: z.string(),
  tenant: z.string(),
  tenant_db: z.string(),
  name: z.string(),
  size: z.number(),
  disabled: z.boolean(),
  created_at: z.number(),
});
export type PoolRow = z.infer<typeof PoolRow>;

export function toPool(row: PoolRow): Pool {
  return {
    id: row.id,
    tenant: row.tenant,
    tenantDb: row.tenant_db,
    pool: row.name,
    size: row.size,
    disabled: row.disabled,
    createTime: new Date(row.created_at),
  };
}
