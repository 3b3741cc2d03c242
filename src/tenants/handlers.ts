// TenantService: authorize → validate → one statement (the change and its audit row) → map.
import type { DatabasePool } from "slonik";
import type { TenantServiceService } from "../../gen/qod/v1/tenant";
import { auditInsert, type AuditEntry } from "../audit/queries";
import { requireSuperuser, requireTenantAdmin, visibleTenants } from "../auth/principal";
import { inStatement } from "../db/transaction";
import { notFound } from "../errors";
import { pageOf, readPage } from "../pagination";
import type { AuthedContext } from "../server/context";
import type { ServiceHandlers } from "../server/unary";
import { Violations } from "../validation";
import { deleteTenant, findTenantByName, insertTenant, listTenants, updateTenantAuth, updateTenantDisabled } from "./queries";
import type { TenantCache } from "./cache";
import { toTenant } from "./rows";
import { validateCreateTenant, validateSetTenantAuth, validateTenantName } from "./validate";

/** GetTenant answers from `cache`; every change goes through `cache.changing`. */
export function tenantHandlers(pool: DatabasePool, cache: TenantCache): ServiceHandlers<typeof TenantServiceService> {
  const audited = (ctx: AuthedContext, entry: AuditEntry) => (from: "t") => auditInsert(ctx, entry, from);
  return {
    async createTenant(request, ctx) {
      requireSuperuser(ctx.principal);
      const tenant = validateCreateTenant(request);
      const by = { actor: ctx.principal.subject, requestId: ctx.requestId, details: { authProvider: tenant.authProvider } };
      const row = await inStatement(pool, ctx, (db) => insertTenant(db, tenant, by));
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
      const audit = audited(ctx, { action: "tenant.setDisabled", tenant: name, details: { disabled: request.disabled } });
      const row = await cache.changing(name, () => inStatement(pool, ctx, (db) => updateTenantDisabled(db, name, request.disabled, audit)));
      if (!row) throw notFound("tenant");
      return toTenant(row);
    },

    async setTenantAuth(request, ctx) {
      requireTenantAdmin(ctx.principal, request.name);
      const { name, authProvider, authConfig } = validateSetTenantAuth(request);
      const audit = audited(ctx, { action: "tenant.setAuth", tenant: name, details: { authProvider } });
      const row = await cache.changing(name, () => inStatement(pool, ctx, (db) => updateTenantAuth(db, name, authProvider, authConfig, audit)));
      if (!row) throw notFound("tenant");
      return toTenant(row);
    },

    async deleteTenant(request, ctx) {
      requireTenantAdmin(ctx.principal, request.name);
      const name = validateTenantName(request.name);
      const audit = audited(ctx, { action: "tenant.delete", tenant: name });
      const deleted = await cache.changing(name, () => inStatement(pool, ctx, (db) => deleteTenant(db, name, audit)));
      if (!deleted) throw notFound("tenant");
      return {};
    },
  };
}
