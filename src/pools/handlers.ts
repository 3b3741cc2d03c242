// PoolService: authorize → validate → the change (with the pool's role on its database's server,
// outside any transaction, for pools CreatePool makes) → map.
import { randomBytes } from "node:crypto";
import type { DatabasePool } from "slonik";
import type { PoolServiceService, PoolStats } from "../../gen/qod/v1/pool";
import { requireTenantAdmin } from "../call/authorize";
import type { ServiceHandlers } from "../call/context";
import { throwIfAborted } from "../call/deadline";
import { poolRoleOf, type Lifecycle } from "../databases";
import { actorOf } from "../db/audit";
import { inStatement, inTransaction } from "../db/transaction";
import { AppError, invalid, notFound } from "../errors";
import { newId } from "../ids";
import { pageOf, readPage } from "../pagination";
import { scramVerifier } from "../scram";
import type { TenantCache } from "../tenants";
import { Violations } from "../validation";
import type { Vault } from "../vault";
import {
  deletePool,
  deletePoolRow,
  findPool,
  insertPool,
  listPools,
  lockDatabaseForPool,
  markPoolAbandoned,
  markPoolDropping,
  markPoolReady,
  updatePoolDisabled,
  updatePoolSize,
} from "./queries";
import { toPool, type PoolRow } from "./rows";
import { MAX_POOL_SIZE, validateCreatePool, validatePoolRef, validateScalePool } from "./validate";

/** The live figures of pools in this replica's pooler, by pool id; none when its data plane is off. */
export type PoolStatsSource = (poolIds: readonly string[]) => Promise<ReadonlyMap<string, PoolStats>>;

export interface PoolDeps {
  pool: DatabasePool;
  /** Told of each change: a tenant lists its pools. */
  tenants: Pick<TenantCache, "changing">;
  vault: Vault;
  /** Makes and drops pools' roles on their databases' servers. */
  roles: Pick<Lifecycle, "ensurePoolRole" | "dropPoolRole">;
  stats?: PoolStatsSource;
}

/** A generated pool password: 192 random bits, URL-safe. */
const newPassword = () => randomBytes(24).toString("base64url");

/** Whether the pool logs in as a role of ours (one CreatePool made), not as a Supavisor user's own. */
const hasOwnRole = (row: PoolRow) => row.kind !== "external" && row.has_secret;

export function poolHandlers(deps: PoolDeps): ServiceHandlers<typeof PoolServiceService> {
  const { pool, tenants, vault, roles } = deps;

  async function withStats(rows: readonly PoolRow[]) {
    const stats = deps.stats && rows.length > 0 ? await deps.stats(rows.map((row) => row.id)) : undefined;
    return rows.map((row) => toPool(row, stats?.get(row.id)));
  }

  async function existing(tenant: string, name: string): Promise<PoolRow> {
    const row = await findPool(pool, tenant, name);
    if (!row || row.role_state === "dropping") throw notFound("pool");
    return row;
  }

  return {
    async createPool(request, ctx) {
      requireTenantAdmin(ctx.principal, request.tenant);
      const command = validateCreatePool(request);
      const id = newId("p");
      const password = command.password ?? newPassword();
      const verifier = scramVerifier(password);
      const created = await tenants.changing(command.tenant, () =>
        inTransaction(pool, ctx, async (tx) => {
          const database = await lockDatabaseForPool(tx, command.tenant, command.database.full);
          if (!database) throw notFound("database");
          const refuse = (description: string) => invalid([{ field: "tenant_db", reason: "invalid_tenant_db", description }]);
          if (database.status !== "READY") throw refuse(`is ${database.status}, not READY`);
          if (database.kind !== "ducklake") throw refuse(`is a ${database.kind} database: only a ducklake database has a Postgres database to pool`);
          const row = { id, tenant: command.tenant, databaseId: database.id, name: command.name, size: command.size, maxClients: command.maxClients };
          return insertPool(tx, { ...row, secret: vault.seal(password, id), verifier, upstreamUser: poolRoleOf(id) }, command.database.full, actorOf(ctx));
        }),
      );
      const role = { databaseId: created.database_id, poolId: id };
      try {
        throwIfAborted(ctx);
        await roles.ensurePoolRole({ ...role, verifier });
      } catch (err) {
        // The role could not be made: the pool is taken back, now or (if its server stays out of
        // reach) by the reconciler; its row never reached the data plane.
        await markPoolAbandoned(pool, id);
        await roles.dropPoolRole(role).then(() => tenants.changing(command.tenant, () => deletePoolRow(pool, id)), () => {});
        throw err;
      }
      const ready = await tenants.changing(command.tenant, () => inStatement(pool, ctx, (db) => markPoolReady(db, id)));
      if (!ready) throw notFound("pool"); // deleted meanwhile
      return toPool(ready, undefined, password);
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
      return { pools: await withStats(items), nextPageToken };
    },

    async deletePool(request, ctx) {
      requireTenantAdmin(ctx.principal, request.tenant);
      const { tenant, name } = validatePoolRef(request);
      const row = await findPool(pool, tenant, name);
      if (!row) throw notFound("pool");
      if (!hasOwnRole(row)) {
        if (!(await tenants.changing(tenant, () => inStatement(pool, ctx, (db) => deletePool(db, tenant, name, actorOf(ctx)))))) throw notFound("pool");
        return {};
      }
      // First out of the data plane (its sessions end), then the role, then the row. A pool already
      // dropping (a DeletePool interrupted) is finished now rather than by the reconciler.
      const dropping =
        row.role_state === "dropping" ? row : await tenants.changing(tenant, () => inStatement(pool, ctx, (db) => markPoolDropping(db, tenant, name, actorOf(ctx))));
      if (!dropping) throw notFound("pool");
      try {
        await roles.dropPoolRole({ databaseId: dropping.database_id, poolId: dropping.id });
      } catch (err) {
        if (!(err instanceof AppError)) throw err;
        throw new AppError(err.reason, `${err.message}; the pool is gone from the data plane and its role will be dropped shortly`, err.violations, { cause: err });
      }
      await tenants.changing(tenant, () => deletePoolRow(pool, dropping.id));
      return {};
    },

    async setPoolDisabled(request, ctx) {
      requireTenantAdmin(ctx.principal, request.tenant);
      const { tenant, name } = validatePoolRef(request);
      const row = await tenants.changing(tenant, () => inStatement(pool, ctx, (db) => updatePoolDisabled(db, tenant, name, request.disabled, actorOf(ctx))));
      if (!row) throw notFound("pool");
      return (await withStats([row]))[0];
    },

    async scalePool(request, ctx) {
      requireTenantAdmin(ctx.principal, request.tenant);
      const { tenant, name, size } = validateScalePool(request);
      const current = await existing(tenant, name);
      if (current.kind !== "external" && size > MAX_POOL_SIZE) {
        throw invalid([{ field: "size", reason: "invalid_size", description: `must be between 1 and ${MAX_POOL_SIZE} for a pool CreatePool made` }]);
      }
      const row = await tenants.changing(tenant, () => inStatement(pool, ctx, (db) => updatePoolSize(db, tenant, name, size, actorOf(ctx))));
      if (!row) throw notFound("pool");
      return (await withStats([row]))[0];
    },
  };
}
