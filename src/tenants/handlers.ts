// TenantService: authorize → validate → one statement (the change and its audit row) → map.
import type { DatabasePool } from "slonik";
import type { TenantServiceService } from "../../gen/qod/v1/tenant";
import { requireSuperuser, requireTenantAdmin, visibleTenants } from "../call/authorize";
import type { ServiceHandlers } from "../call/context";
import { actorOf } from "../db/audit";
import { inStatement } from "../db/transaction";
import { notFound } from "../errors";
import { pageOf, readPage } from "../pagination";
import { Violations } from "../validation";
import type { TenantCache } from "./cache";
import { deleteTenant, findTenantByName, insertTenant, listTenants, updateTenantAuth, updateTenantDisabled } from "./queries";
import { toTenant } from "./rows";
import { validateCreateTenant, validateSetTenantAuth, validateTenantName } from "./validate";

/** GetTenant answers from `cache`; every change goes through `cache.changing`. */
export function tenantHandlers(pool: DatabasePool, cache: TenantCache): ServiceHandlers<typeof TenantServiceService> {
  return {
    async createTenant(request, ctx) {
      requireSuperuser(ctx.principal);
      const tenant = validateCreateTenant(request);
      const row = await inStatement(pool, ctx, (db) => insertTenant(db, tenant, actorOf(ctx)));
      return toTenant(row);
    },

    async listTenants(request, ctx) {
      const visible = visibleTenants(ctx.principal);
      const v = new Violations();
      const page = readPage(v, request.pageSize, request.pageToken, "tenants");
      v.throwIfAny();
      const rows = await listTenants(pool, page, visible);
      const { items, nextPageToken } = pageOf(rows, page, (row) => row.name, "tenants");
      return { tenants: items.map(toTenant), nextPageToken };
    },

    async getTenant(request, ctx) {
      requireTenantAdmin(ctx.principal, request.name);
      const name = validateTenantName(request.name);
      const tenant = await cache.get(name, async () => {
        const row = await findTenantByName(pool, name);
        return row ? toTenant(row) : undefined;
      });
      if (!tenant) throw notFound("tenant");
      return tenant;
    },

    async setTenantDisabled(request, ctx) {
      requireTenantAdmin(ctx.principal, request.name);
      const name = validateTenantName(request.name);
      const row = await cache.changing(name, () => inStatement(pool, ctx, (db) => updateTenantDisabled(db, name, request.disabled, actorOf(ctx))));
      if (!row) throw notFound("tenant");
      return toTenant(row);
    },

    async setTenantAuth(request, ctx) {
      requireTenantAdmin(ctx.principal, request.name);
      const { name, authProvider, authConfig } = validateSetTenantAuth(request);
      const row = await cache.changing(name, () => inStatement(pool, ctx, (db) => updateTenantAuth(db, name, authProvider, authConfig, actorOf(ctx))));
      if (!row) throw notFound("tenant");
      return toTenant(row);
    },

    async deleteTenant(request, ctx) {
      requireTenantAdmin(ctx.principal, request.name);
      const name = validateTenantName(request.name);
      const deleted = await cache.changing(name, () => inStatement(pool, ctx, (db) => deleteTenant(db, name, actorOf(ctx))));
      if (!deleted) throw notFound("tenant");
      return {};
    },
  };
}
