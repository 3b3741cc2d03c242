// DatabaseService: authorize → validate → the lifecycle (or a read) → map.
import type { DatabaseServiceService } from "../../gen/qod/v1/database";
import { requireAdmin, requireTenantAdmin } from "../call/authorize";
import type { ServiceHandlers } from "../call/context";
import { metadataValue } from "../call/metadata";
import type { Config, PgTarget } from "../config";
import type { DatabasePool } from "../db/sql";
import { notFound } from "../errors";
import { pageOf, readPage } from "../pagination";
import { Violations } from "../validation";
import { requireServerAccess } from "./access";
import type { Lifecycle } from "./lifecycle";
import { findDatabase, listDatabases } from "./queries";
import { effectiveTarget } from "./servers";
import { toDatabase } from "./rows";
import { validateCreateDatabase, validateDatabaseRef, validateDeleteDatabase, validateUpdateDatabase } from "./validate";

/** The catalog schema a metastore without `schemaName` uses. */
const DEFAULT_SCHEMA_NAME = "main";

export interface DatabaseHandlerDeps {
  /** The calls' pool, for reads. */
  pool: DatabasePool;
  lifecycle: Lifecycle;
  /** The shared server (the global metastore defaults). */
  defaults: PgTarget;
  config: Pick<Config, "dataPath" | "dataDir" | "metastoreAllowedHosts">;
}

export function databaseHandlers({ pool, lifecycle, defaults, config }: DatabaseHandlerDeps): ServiceHandlers<typeof DatabaseServiceService> {
  return {
    async createDatabase(request, ctx) {
      requireTenantAdmin(ctx.principal, request.tenant);
      const rules = { dataDir: config.dataDir, dataRoot: config.dataPath, anywhere: ctx.principal.superuser };
      const command = validateCreateDatabase(request, metadataValue(ctx.metadata, "idempotency-key"), rules);
      requireServerAccess(ctx.principal, config.metastoreAllowedHosts, effectiveTarget(defaults, command.metastore, command.secrets), request.metastore);
      return toDatabase(await lifecycle.create(ctx, command));
    },

    async listDatabases(request, ctx) {
      requireTenantAdmin(ctx.principal, request.tenant);
      const v = new Violations();
      const tenant = v.name("tenant", request.tenant, "invalid_id");
      const scope = `databases:${tenant}`;
      const page = readPage(v, request.pageSize, request.pageToken, scope);
      v.throwIfAny();
      const rows = await listDatabases(pool, tenant, page);
      const { items, nextPageToken } = pageOf(rows, page, (row) => row.name, scope);
      return { tenantDbs: items.map(toDatabase), nextPageToken };
    },

    async getDatabase(request, ctx) {
      requireTenantAdmin(ctx.principal, request.tenant);
      const { tenant, name } = validateDatabaseRef(request);
      const row = await findDatabase(pool, tenant, name.full);
      if (!row) throw notFound("database");
      return toDatabase(row);
    },

    async updateDatabase(request, ctx) {
      requireTenantAdmin(ctx.principal, request.tenant);
      const command = validateUpdateDatabase(request);
      if (!ctx.principal.superuser) {
        // The server of a database never changes after it is created, so reading it before the
        // update's lock is safe; an absent database is the update's own not_found.
        const row = await findDatabase(pool, command.tenant, command.name.full);
        if (row) requireServerAccess(ctx.principal, config.metastoreAllowedHosts, effectiveTarget(defaults, row.metastore, { metastore: {}, objectStore: {} }), request.metastore);
      }
      return toDatabase(await lifecycle.update(ctx, command));
    },

    async deleteDatabase(request, ctx) {
      requireTenantAdmin(ctx.principal, request.tenant);
      await lifecycle.delete(ctx, validateDeleteDatabase(request));
      return {};
    },

    async getMetastoreDefaults(_request, ctx) {
      requireAdmin(ctx.principal);
      return {
        pgHost: defaults.host,
        pgPort: String(defaults.port),
        pgUser: defaults.user,
        schemaName: DEFAULT_SCHEMA_NAME,
        dataPath: config.dataPath,
      };
    },
  };
}
