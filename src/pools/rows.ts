// Row schemas of pools (with their database and tenant) and their mapping to the API's Pool,
// which carries a password only in CreatePool's reply.
import { z } from "zod";
import type { Pool, PoolStats } from "../../gen/qod/v1/pool";
import { ROLE_STATES } from "../data-plane";

/** Client sessions at once through a QOD pool when CreatePool is not told. */
export const DEFAULT_MAX_CLIENTS = 100;

export const PoolRow = z.object({
  id: z.string(),
  tenant: z.string(),
  database_id: z.string(),
  /** The database's full name (its row's name). */
  tenant_db: z.string(),
  /** The database name clients ask for: the Postgres database's (a Supavisor upstream's db_database). */
  database: z.string(),
  kind: z.string(),
  name: z.string(),
  size: z.number(),
  pool_disabled: z.boolean(),
  tenant_disabled: z.boolean(),
  /** Effective: the pool's own, else the Supavisor tenant's default, else DEFAULT_MAX_CLIENTS. */
  max_clients: z.number(),
  role_state: z.enum(ROLE_STATES),
  /** Whether the pool has credentials (pools registered before they had them do not). */
  has_secret: z.boolean(),
  created_at: z.number(),
});
export type PoolRow = z.infer<typeof PoolRow>;

export function toPool(row: PoolRow, stats?: PoolStats, password?: string): Pool {
  return {
    id: row.id,
    tenant: row.tenant,
    tenantDb: row.tenant_db,
    pool: row.name,
    size: row.size,
    disabled: row.pool_disabled || row.tenant_disabled,
    createTime: new Date(row.created_at),
    password,
    user: `${row.name}.${row.tenant}`,
    database: row.database,
    poolDisabled: row.pool_disabled,
    maxClients: row.max_clients,
    ready: row.role_state === "ready" && row.has_secret,
    stats,
  };
}
