// SupavisorService: authorize → validate → (the live upstream check, outside any transaction) →
// one transaction → reply `{"data": tenant}`.
import type { Logger } from "pino";
import type { DatabasePool } from "slonik";
import type { SupavisorServiceService } from "../../gen/qod/v1/supavisor";
import { requireSuperuser, requireTenantAdmin } from "../call/authorize";
import type { AuthedContext, ServiceHandlers } from "../call/context";
import { throwIfAborted } from "../call/deadline";
import type { PublicMethodsOf } from "../call/public-methods";
import { actorOf } from "../db/audit";
import { isUniqueViolation } from "../db/errors";
import { inStatement, inTransaction } from "../db/transaction";
import { AppError, invalid, notFound } from "../errors";
import { newId } from "../ids";
import { scramVerifier } from "../scram";
import { createKeyedMutex } from "../semaphore";
import { findTenant, type TenantCache } from "../tenants";
import type { Vault } from "../vault";
import {
  deleteTenant,
  deleteUsers,
  deleteUsersExcept,
  findSupavisorTenant,
  insertSupavisorSettings,
  insertTenant,
  insertUpstream,
  listSupavisorUsers,
  requestTermination,
  setBan,
  stateAnswers,
  updateManager,
  updateSupavisorSettings,
  updateTenantAccess,
  updateUpstream,
  upsertUser,
  type UserWrite,
} from "./queries";
import { toSettings, toSupavisorTenant, type SupavisorTenantRow, type SupavisorUserRow } from "./rows";
import { checkUpstream, type Login } from "./upstream-check";
import { merge, movesUpstream, touchesUpstream, validateCredentials, validateExternalId, validatePatch, validatePut, type PutCommand, type TenantSettings } from "./validate";

export interface SupavisorDeps {
  pool: DatabasePool;
  vault: Vault;
  /** Told of every change: a tenant lists its pools, and reads are cached. */
  tenants: Pick<TenantCache, "changing">;
  logger: Logger;
}

/** A write whose premise moved (another replica's write came first): read again and redo. */
class Conflict extends Error {}
const ATTEMPTS = 5;

interface Stored {
  row: SupavisorTenantRow;
  users: readonly SupavisorUserRow[];
}

export function supavisorHandlers(deps: SupavisorDeps): ServiceHandlers<typeof SupavisorServiceService, PublicMethodsOf<"supavisor">> {
  const { pool, vault, tenants } = deps;
  // PUTs of one tenant run one after the other in a replica; across replicas the version decides.
  const writes = createKeyedMutex();

  async function load(db: DatabasePool, name: string): Promise<Stored | null> {
    const row = await findSupavisorTenant(db, name);
    return row && { row, users: await listSupavisorUsers(db, row.database_id) };
  }

  async function reply(name: string) {
    const stored = await load(pool, name);
    if (!stored) throw notFound("tenant");
    return { data: toSupavisorTenant(stored.row, stored.users) };
  }

  /** The password of a stored user, for the live check. */
  const storedPassword = (user: SupavisorUserRow | undefined): string | undefined => (user?.secret ? vault.open(user.secret, user.id) : undefined);

  /** The users' rows as written: new passwords sealed with their pool's id and their verifiers derived. */
  function userWrites(settings: TenantSettings, stored: Stored | null): UserWrite[] {
    return settings.users.map((user) => {
      const id = stored?.users.find((row) => row.name === user.dbUser)?.id ?? newId("p");
      const fresh = user.password !== undefined;
      return {
        id,
        dbUser: user.dbUser,
        alias: user.alias,
        secret: fresh ? vault.seal(user.password!, id) : null,
        verifier: fresh ? scramVerifier(user.password!) : "",
        size: user.poolSize,
        isManager: user.isManager,
        mode: user.mode,
        checkoutTimeoutMs: user.checkoutTimeoutMs,
        maxClients: user.maxClients,
      };
    });
  }

  /** One attempt of a PUT against what is stored now; throws Conflict when a concurrent write moved it. */
  async function put(ctx: AuthedContext, command: PutCommand): Promise<void> {
    const name = command.externalId;
    const stored = await load(pool, name);
    if (!stored) requireSuperuser(ctx.principal); // creating (or registering) a Supavisor tenant
    else if (!ctx.principal.superuser && movesUpstream(command)) {
      throw new AppError("superuser_required", "only a superuser may point a tenant at another upstream server");
    }
    const settings = merge(command, stored ? toSettings(stored.row, stored.users) : undefined);
    let serverVersion = "";
    if (!stored || touchesUpstream(command)) {
      const logins: Login[] = settings.users.map((user, i) => ({
        dbUser: user.dbUser,
        password: user.password ?? storedPassword(stored?.users.find((row) => row.name === user.dbUser)) ?? "",
        field: command.users ? `tenant.users[${i}]` : "tenant.users",
      }));
      throwIfAborted(ctx);
      serverVersion = await checkUpstream(settings, logins, ctx.log);
    }
    const writes = userWrites(settings, stored);
    const actor = actorOf(ctx);
    const audit = { action: "supavisor.put", tenant: name, details: { created: !stored, users: settings.users.map((u) => u.dbUser) } } as const;
    const registered = stored ? undefined : await findTenant(pool, name);
    await inTransaction(pool, ctx, async (tx) => {
      let databaseId: string;
      if (stored) {
        if (!(await updateSupavisorSettings(tx, name, stored.row.version, settings, actor, audit))) throw new Conflict();
        await updateTenantAccess(tx, name, settings);
        databaseId = stored.row.database_id;
        await updateUpstream(tx, databaseId, settings.upstream, serverVersion);
      } else {
        if (!registered) await insertTenant(tx, name, settings);
        else if (!(await updateTenantAccess(tx, name, settings))) throw new Conflict();
        databaseId = newId("td");
        await insertUpstream(tx, databaseId, name, settings.upstream, serverVersion);
        await insertSupavisorSettings(tx, name, databaseId, settings, actor, audit);
      }
      if (!stored || command.users) {
        await deleteUsersExcept(tx, databaseId, writes.map((w) => w.dbUser));
        for (const write of writes) {
          if (!(await upsertUser(tx, name, databaseId, write))) {
            throw invalid([{ field: "tenant.users", reason: "invalid_username", description: `"${write.dbUser}" is the name of another pool of the tenant` }]);
          }
        }
      }
    });
  }

  return {
    async putSupavisorTenant(request, ctx) {
      requireTenantAdmin(ctx.principal, request.externalId);
      const command = validatePut(request.externalId, request.tenant);
      // Two PUTs of one tenant at once: one creates it, the other becomes an update of it.
      for (let attempt = 1; ; attempt++) {
        try {
          await writes.run(command.externalId, () => tenants.changing(command.externalId, () => put(ctx, command)));
          return reply(command.externalId);
        } catch (err) {
          const raced = err instanceof Conflict || isUniqueViolation(err, "tenants_pkey") || isUniqueViolation(err, "supavisor_tenants_pkey");
          if (!raced) throw err;
          if (attempt === ATTEMPTS) throw new AppError("unavailable", "the tenant kept changing during the update; retry", [], { cause: err });
        }
      }
    },

    async getSupavisorTenant(request, ctx) {
      requireTenantAdmin(ctx.principal, request.externalId);
      return reply(validateExternalId(request.externalId));
    },

    async patchSupavisorTenant(request, ctx) {
      requireSuperuser(ctx.principal);
      const { externalId, ban } = validatePatch(request);
      const found = await tenants.changing(externalId, () => inStatement(pool, ctx, (db) => setBan(db, externalId, ban, actorOf(ctx))));
      if (!found) throw notFound("tenant");
      return reply(externalId);
    },

    async deleteSupavisorTenant(request, ctx) {
      requireTenantAdmin(ctx.principal, request.externalId);
      const name = validateExternalId(request.externalId);
      const deleted = await tenants.changing(name, async () => {
        const stored = await findSupavisorTenant(pool, name);
        if (!stored) return false;
        return inTransaction(pool, ctx, async (tx) => {
          await deleteUsers(tx, stored.database_id);
          return deleteTenant(tx, name, actorOf(ctx));
        });
      });
      if (!deleted) throw notFound("tenant");
      return {};
    },

    async terminateSupavisorTenant(request, ctx) {
      requireTenantAdmin(ctx.principal, request.externalId);
      const name = validateExternalId(request.externalId);
      if (!(await inStatement(pool, ctx, (db) => requestTermination(db, name, actorOf(ctx))))) throw notFound("tenant");
      return { result: "ok" };
    },

    async updateSupavisorAuthCredentials(request, ctx) {
      requireTenantAdmin(ctx.principal, request.externalId);
      const { externalId, dbUser, password } = validateCredentials(request);
      const stored = await load(pool, externalId);
      if (!stored) throw notFound("tenant");
      const refuse = (description: string) => invalid([{ field: "external_id", reason: "invalid_require_user", description }]);
      if (stored.row.require_user) throw refuse("credentials are updated only for tenants with require_user: false");
      const manager = stored.users.find((user) => user.is_manager);
      if (!manager) throw refuse("the tenant has no manager user");
      const settings = toSettings(stored.row, stored.users);
      const withManager: TenantSettings = { ...settings, users: settings.users.map((u) => (u.dbUser === manager.name ? { ...u, dbUser, password } : u)) };
      throwIfAborted(ctx);
      await checkUpstream(withManager, [{ dbUser, password, field: "db_user" }], ctx.log);
      const credentials = { dbUser, secret: vault.seal(password, manager.id), verifier: scramVerifier(password) };
      const updated = await tenants.changing(externalId, () => inStatement(pool, ctx, (db) => updateManager(db, externalId, manager.id, credentials, actorOf(ctx))));
      if (!updated) throw notFound("tenant");
      return {};
    },

    async supavisorHealth(_request, ctx) {
      let answers = false;
      try {
        answers = await inStatement(pool, ctx, (db) => stateAnswers(db));
      } catch {
        // reported below, as Supavisor's failed check
      }
      if (!answers) throw new AppError("unavailable", "unhealthy: database_reachable");
      return { status: "ok" };
    },
  };
}
