// CreateUser, ListUsers, DeleteUser: database-backed users of a tenant, or superusers when no
// tenant is named (that realm is superuser-only).
import { requireRealmAdmin } from "../call/authorize";
import { actorOf } from "../db/audit";
import { inStatement, inTransaction } from "../db/transaction";
import { AppError, notFound } from "../errors";
import { newId } from "../ids";
import { pageOf } from "../pagination";
import { findTenant } from "../tenants";
import type { AuthDeps } from "./deps";
import type { AuthHandlers } from "./handler-types";
import { deleteUser, insertUser, listUsers } from "./queries";
import { toUser } from "./rows";
import { validateCreateUser, validateDeleteUser, validateListUsers } from "./validate";

export function userHandlers(deps: AuthDeps): Pick<AuthHandlers, "createUser" | "listUsers" | "deleteUser"> {
  const { pool, passwords } = deps;
  return {
    async createUser(request, ctx) {
      requireRealmAdmin(ctx.principal, request.tenant);
      const user = validateCreateUser(request);
      // bcrypt runs before the transaction, which holds only SQL.
      const passwordHash = await passwords.hash(user.password);
      const row = await inTransaction(pool, ctx, async (tx) => {
        if (user.tenant !== null) {
          const tenant = await findTenant(tx, user.tenant);
          if (!tenant) throw notFound("tenant");
          // Other tenants' users sign in at their OIDC provider, never with a password.
          if (tenant.authProvider !== "db") {
            throw new AppError("invalid_tenant", "users can only be created in a tenant whose authProvider is db", [
              { field: "tenant", reason: "invalid_tenant", description: "must be a tenant whose authProvider is db" },
            ]);
          }
        }
        return insertUser(tx, { id: newId("u"), tenant: user.tenant, username: user.username, passwordHash, role: user.role }, actorOf(ctx));
      });
      return toUser(row);
    },

    async listUsers(request, ctx) {
      requireRealmAdmin(ctx.principal, request.tenant);
      const { tenant, page, scope } = validateListUsers(request);
      const rows = await listUsers(pool, tenant, page);
      const { items, nextPageToken } = pageOf(rows, page, (row) => row.username, scope);
      return { users: items.map(toUser), nextPageToken };
    },

    async deleteUser(request, ctx) {
      requireRealmAdmin(ctx.principal, request.tenant);
      const { tenant, username } = validateDeleteUser(request);
      const deleted = await inStatement(pool, ctx, (db) => deleteUser(db, tenant, username, actorOf(ctx)));
      if (!deleted) throw notFound("user");
      return {};
    },
  };
}
