// DatabaseService: authorize → validate → transaction (and, for ducklake, provisioning) → map.
import type { DatabaseServiceService } from "../../gen/qod/v1/database";
import { insertAudit } from "../audit/queries";
import { requireTenantAdmin } from "../auth/principal";
import type { Config } from "../config";
import { inTransaction } from "../db/transaction";
import { AppError, notFound } from "../errors";
import { pageOf, readPage } from "../pagination";
import { metadataValue, type AuthedContext } from "../server/context";
import type { ServiceHandlers } from "../server/unary";
import { Violations } from "../validation";
import { createDatabase, type WithLockConnection } from "./create";
import {
  databaseHasPools,
  deleteDatabaseRow,
  findDatabase,
  listDatabases,
  lockDatabaseName,
  lockDatabaseRow,
  markDatabaseDeleting,
  unlockDatabaseNames,
  updateDatabaseSettings,
} from "./queries";
import { effectiveTarget } from "./provision";
import { isUnsettled, settle, type LifecycleDeps } from "./reconcile";
import { toDatabase } from "./rows";
import { mergeSettings, validateCreateDatabase, validateDatabaseRef, validateDeleteDatabase, validateUpdateDatabase } from "./validate";
import { openSecrets, sealSecrets } from "./vault";

/** The catalog schema a metastore without `schemaName` uses. */
const DEFAULT_SCHEMA_NAME = "main";

/**
 * At most `limit` calls at once hold a lock connection for the length of a provisioning or a
 * drop; the others wait their turn here, in order, rather than time out in the pool's queue.
 */
function lockConnections(deps: LifecycleDeps, limit: number): WithLockConnection {
  let active = 0;
  const queue: (() => void)[] = [];
  return async (work) => {
    if (active >= limit) await new Promise<void>((resolve) => queue.push(resolve));
    else active++;
    try {
      return await deps.lockPool.connect(async (conn) => {
        try {
          return await work(conn);
        } finally {
          await unlockDatabaseNames(conn);
        }
      });
    } finally {
      const next = queue.shift();
      if (next) next(); // the slot passes straight to the next caller
      else active--;
    }
  };
}

async function deleteDatabase(deps: LifecycleDeps, withLockConnection: WithLockConnection, ctx: AuthedContext, request: ReturnType<typeof validateDeleteDatabase>): Promise<void> {
  const { tenant, name, dropDatabase } = request;
  const audit = { action: "database.delete", tenant, target: name.full, details: { dropDatabase } };
  await withLockConnection(async (conn) => {
    await inTransaction(conn, ctx, (tx) => lockDatabaseName(tx, name.full)); // waits for a create or drop in progress
    let row = await findDatabase(conn, tenant, name.full);
    if (!row) throw notFound("database");
    if (isUnsettled(row)) {
      row = await settle(deps, conn, row); // left by a crash: finish or roll back first
      if (!row) return; // a pending drop completed
    }
    // Only a READY ducklake row has a Postgres database of ours (a FAILED one rolled it back).
    if (!dropDatabase || row.status !== "READY" || row.kind !== "ducklake") {
      const id = row.id;
      await inTransaction(conn, ctx, async (tx) => {
        await deleteDatabaseRow(tx, id); // pools reference the row: `has_pools`
        await insertAudit(tx, ctx, audit);
      });
      return;
    }
    const deleting = await inTransaction(conn, ctx, async (tx) => {
      // The row lock keeps new pools out (they take a key-share lock on it) until DELETING commits.
      const locked = await lockDatabaseRow(tx, tenant, name.full);
      if (!locked) throw notFound("database");
      if (await databaseHasPools(tx, locked.id)) throw new AppError("has_pools", "the database has pools; delete them first");
      const marked = await markDatabaseDeleting(tx, locked.id);
      await insertAudit(tx, ctx, audit);
      return marked;
    });
    try {
      await settle(deps, conn, deleting);
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      throw new AppError(err.reason, `${err.message}; the database stays DELETING and the drop will be retried`, err.violations, { cause: err });
    }
  });
}

export function databaseHandlers(deps: LifecycleDeps, config: Pick<Config, "dataPath">): ServiceHandlers<typeof DatabaseServiceService> {
  const { pool, vault } = deps;
  const withLockConnection = lockConnections(deps, deps.lockSlots);
  return {
    async createDatabase(request, ctx) {
      requireTenantAdmin(ctx.principal, request.tenant);
      const command = validateCreateDatabase(request, metadataValue(ctx.metadata, "idempotency-key"), config.dataPath);
      return toDatabase(await createDatabase(deps, withLockConnection, ctx, command));
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
      const row = await inTransaction(pool, ctx, async (tx) => {
        const current = await lockDatabaseRow(tx, command.tenant, command.name.full);
        if (!current) throw notFound("database");
        const settings = mergeSettings(
          {
            metastore: current.metastore,
            objectStore: current.object_store,
            secrets: openSecrets(vault, current.id, current.secrets),
            defaultDatabase: current.default_database,
            defaultSchema: current.default_schema,
          },
          current.kind,
          command,
        );
        // A schema the update names goes into the catalog before the row names it. Adding one the
        // catalog holds does nothing, so a retried transaction may run this again.
        const schemas = [settings.metastore.schemaName ?? "", settings.defaultSchema].filter((s) => s !== "");
        const named = settings.defaultSchema !== current.default_schema || settings.metastore.schemaName !== current.metastore.schemaName;
        if (current.kind === "ducklake" && current.status === "READY" && named && schemas.length > 0) {
          await deps.servers.addCatalogSchemas(effectiveTarget(deps.defaults, settings.metastore, settings.secrets), current.name, schemas);
        }
        const updated = await updateDatabaseSettings(tx, current.id, { ...settings, secrets: sealSecrets(vault, current.id, settings.secrets) });
        // Key names only: values may be secrets.
        await insertAudit(tx, ctx, {
          action: "database.update",
          tenant: command.tenant,
          target: command.name.full,
          details: {
            metastore: Object.keys(command.metastore),
            objectStore: Object.keys(command.objectStore),
            defaultDatabase: command.defaultDatabase !== undefined,
            defaultSchema: command.defaultSchema !== undefined,
          },
        });
        return updated;
      });
      return toDatabase(row);
    },

    async deleteDatabase(request, ctx) {
      requireTenantAdmin(ctx.principal, request.tenant);
      await deleteDatabase(deps, withLockConnection, ctx, validateDeleteDatabase(request));
      return {};
    },

    async getMetastoreDefaults(_request, ctx) {
      if (!ctx.principal.superuser && ctx.principal.role !== "admin") throw new AppError("admin_required", "this operation requires an admin");
      return {
        pgHost: deps.defaults.host,
        pgPort: String(deps.defaults.port),
        pgUser: deps.defaults.user,
        schemaName: DEFAULT_SCHEMA_NAME,
        dataPath: config.dataPath,
      };
    },
  };
}
