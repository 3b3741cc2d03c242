// PoolService: the registry of pools, each bound to one READY database of its tenant.
import type { DatabasePool } from "slonik";
import type { PoolServiceService } from "../../gen/qod/v1/pool";
import { insertAudit } from "../audit/queries";
import { requireTenantAdmin } from "../auth/principal";
import { inTransaction } from "../db/transaction";
import { AppError, notFound } from "../errors";
import { newId } from "../ids";
import { pageOf, readPage } from "../pagination";
import type { ServiceHandlers } from "../server/unary";
import type { TenantCache } from "../tenants/cache";
import { Violations } from "../validation";
import { deletePool, insertPool, listPools, lockDatabaseForPool } from "./queries";
import { toPool } from "./rows";
import { validateCreatePool, validateDeletePool } from "./validate";

/** `tenants` is told of each change: a tenant lists its pools. */
export function poolHandlers(pool: DatabasePool, tenants: Pick<TenantCache, "changing">): ServiceHandlers<typeof PoolServiceService> {
  return {
    async createPool(request, ctx) {
      requireTenantAdmin(ctx.principal, request.tenant);
      const command = validateCreatePool(request);
      const row = await tenants.changing(command.tenant, () => inTransaction(pool, ctx, async (tx) => {
        const database = await lockDatabaseForPool(tx, command.tenant, command.database.full);
        if (!database) throw notFound("database");
        if (database.status !== "READY") {
          throw new AppError("invalid_tenant_db", "the database is not ready", [
            { field: "tenant_db", reason: "invalid_tenant_db", description: `is ${database.status}, not READY` },
          ]);
        }
        const created = await insertPool(tx, { id: newId("p"), tenant: command.tenant, databaseId: database.id, name: command.name, size: command.size });
        await insertAudit(tx, ctx, { action: "pool.create", tenant: command.tenant, target: command.name, details: { tenantDb: command.database.full, size: command.size } });
        return created;
      }));
      return toPool(row);
    },

    async listPools(request, ctx) {
      requireTenantAdmin(ctx.principal, request.tenant);
      const v = new Violations();
      const tenant = v.name("tenant", request.tenant, "invalid_id");
      const scope = `pools:${tenant}`;
      const page = readPage(v, request.pageSize, request.pageToken, scope);
      v.throwIfAny();
      const rows = await listPools(pool, tenant, page);
      const { items, nextPageToken } = pageOf(rows, page, (row) => row.name, scope);
      return { pools: items.map(toPool), nextPageToken };
    },

    async deletePool(request, ctx) {
      requireTenantAdmin(ctx.principal, request.tenant);
      const { tenant, name } = validateDeletePool(request);
      const deleted = await tenants.changing(tenant, () => inTransaction(pool, ctx, async (tx) => {
        const found = await deletePool(tx, tenant, name);
        if (found) await insertAudit(tx, ctx, { action: "pool.delete", tenant, target: name });
        return found;
      }));
      if (!deleted) throw notFound("pool");
      return {};
    },
  };
}
