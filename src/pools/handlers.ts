// PoolService: the registry of pools, each bound to one READY database of its tenant.
import type { DatabasePool } from "slonik";
import type { PoolServiceService } from "../../gen/qod/v1/pool";
import { requireTenantAdmin } from "../call/authorize";
import type { ServiceHandlers } from "../call/context";
import { actorOf } from "../db/audit";
import { inStatement, inTransaction } from "../db/transaction";
import { AppError, notFound } from "../errors";
import { newId } from "../ids";
import { pageOf, readPage } from "../pagination";
import type { TenantCache } from "../tenants";
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
        const newPool = { id: newId("p"), tenant: command.tenant, databaseId: database.id, name: command.name, size: command.size };
        return insertPool(tx, newPool, command.database.full, actorOf(ctx));
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
      const deleted = await tenants.changing(tenant, () => inStatement(pool, ctx, (db) => deletePool(db, tenant, name, actorOf(ctx))));
      if (!deleted) throw notFound("pool");
      return {};
    },
  };
}
