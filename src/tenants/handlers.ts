// TenantService: authorize → validate → one transaction → map.
import type { DatabasePool } from "slonik";
import type { TenantServiceService } from "../../gen/qod/v1/tenant";
import { insertAudit } from "../audit/queries";
import { requireSuperuser, requireTenantAdmin, visibleTenants } from "../auth/principal";
import { inTransaction } from "../db/transaction";
import { notFound } from "../errors";
import { pageOf, readPage } from "../pagination";
import type { ServiceHandlers } from "../server/unary";
import { Violations } from "../validation";
import { deleteTenant, findTenantByName, insertTenant, listTenants, updateTenantAuth, updateTenantDisabled } from "./queries";
import { toTenant } from "./rows";
import { validateCreateTenant, validateSetTenantAuth, validateTenantName } from "./validate";

export function tenantHandlers(pool: DatabasePool): ServiceHandlers<typeof TenantServiceService> {
  return {
    async createTenant(request, ctx) {
      requireSuperuser(ctx.principal);
      const tenant = validateCreateTenant(request);
      const row = await inTransaction(pool, ctx, async (tx) => {
        const created = await insertTenant(tx, tenant);
        await insertAudit(tx, ctx, { action: "tenant.create", tenant: tenant.name, details: { authProvider: tenant.authProvider } });
        return created;
      });
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
      const row = await findTenantByName(pool, name);
      if (!row) throw notFound("tenant");
      return toTenant(row);
    },

    async setTenantDisabled(request, ctx) {
      requireTenantAdmin(ctx.principal, request.name);
      const name = validateTenantName(request.name);
      const row = await inTransaction(pool, ctx, async (tx) => {
        const updated = await updateTenantDisabled(tx, name, request.disabled);
        if (updated) await insertAudit(tx, ctx, { action: "tenant.setDisabled", tenant: name, details: { disabled: request.disabled } });
        return updated;
      });
      if (!row) throw notFound("tenant");
      return toTenant(row);
    },

    async setTenantAuth(request, ctx) {
      requireTenantAdmin(ctx.principal, request.name);
      const { name, authProvider, authConfig } = validateSetTenantAuth(request);
      const row = await inTransaction(pool, ctx, async (tx) => {
        const updated = await updateTenantAuth(tx, name, authProvider, authConfig);
        if (updated) await insertAudit(tx, ctx, { action: "tenant.setAuth", tenant: name, details: { authProvider } });
        return updated;
      });
      if (!row) throw notFound("tenant");
      return toTenant(row);
    },

    async deleteTenant(request, ctx) {
      requireTenantAdmin(ctx.principal, request.name);
      const name = validateTenantName(request.name);
      const deleted = await inTransaction(pool, ctx, async (tx) => {
        const found = await deleteTenant(tx, name);
        if (found) await insertAudit(tx, ctx, { action: "tenant.delete", tenant: name });
        return found;
      });
      if (!deleted) throw notFound("tenant");
      return {};
    },
  };
}
