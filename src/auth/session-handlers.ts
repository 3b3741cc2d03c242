// Login, Logout, WhoAmI, ExchangeOidcToken and ChangePassword: getting, describing and ending
// a session, and proving a password.
import { manageableTenants, requireOwnAccount, requireSession } from "../call/authorize";
import { actorOf } from "../db/audit";
import { inStatement, inTransaction } from "../db/transaction";
import { AppError, notFound } from "../errors";
import { findTenant } from "../tenants";
import type { AuthDeps } from "./deps";
import type { AuthHandlers } from "./handler-types";
import { OidcRejected } from "./oidc";
import { userPrincipal, type AccountRef } from "./principal";
import { findCredential, findUserByName, purgeExpiredRevocations, revokeSession, updatePasswordHash } from "./queries";
import { throttleKeys } from "./throttle";
import { validateChangePassword, validateExchangeOidcToken, validateLogin } from "./validate";

/** One answer for every failed login: no hint whether the user, the password or the tenant was wrong. */
const loginRefused = () => new AppError("unauthenticated", "invalid username or password");

export function sessionHandlers(deps: AuthDeps): Pick<AuthHandlers, "login" | "logout" | "whoAmI" | "exchangeOidcToken" | "changePassword"> {
  const { pool, passwords, sessions, throttle, oidc } = deps;

  async function openSession(account: AccountRef & { session_epoch: number }) {
    const session = await sessions.issue(account, account.session_epoch);
    return {
      token: session.token,
      username: account.username,
      tenant: account.tenant ?? "",
      role: account.role,
      expireTime: new Date(session.expiresAt),
    };
  }

  return {
    async login(request, ctx) {
      const { tenant, username, password } = validateLogin(request);
      const keys = throttleKeys(ctx, tenant, username);
      await throttle.check(keys);
      const account = await findCredential(pool, tenant, username);
      // Always runs bcrypt (against a dummy hash when there is no such user): equal timing.
      const matches = await passwords.verify(password, account?.password_hash);
      if (!account || !matches || !account.tenant_accepts_passwords) {
        await throttle.failed(keys);
        throw loginRefused();
      }
      await throttle.succeeded(keys);
      const principal = userPrincipal(account, "session");
      return { ...(await openSession(account)), superuser: principal.superuser, manageableTenants: manageableTenants(principal) };
    },

    async logout(_request, ctx) {
      const session = requireSession(ctx.principal);
      await inTransaction(pool, ctx, async (tx) => {
        await revokeSession(tx, { jti: session.sessionId, expiresAt: session.expiresAt, tenant: session.tenant, subject: session.subject }, actorOf(ctx));
        await purgeExpiredRevocations(tx);
      });
      return {};
    },

    async whoAmI(_request, ctx) {
      const { principal } = ctx;
      return {
        username: principal.subject,
        role: principal.role,
        tenant: principal.tenant ?? "",
        superuser: principal.superuser,
        manageableTenants: manageableTenants(principal),
        credential: principal.credential,
      };
    },

    async exchangeOidcToken(request, ctx) {
      const { tenant, idToken } = validateExchangeOidcToken(request);
      const refused = (why: string) => {
        ctx.log.info({ tenant, why }, "OIDC token refused");
        return new AppError("unauthenticated", "the ID token was not accepted");
      };
      const row = await findTenant(pool, tenant);
      if (!row || row.disabled) throw refused("no such tenant, or it is disabled");
      let username: string;
      try {
        username = await oidc.verify(row, idToken);
      } catch (err) {
        if (err instanceof OidcRejected) throw refused(err.message);
        throw err;
      }
      const account = await findUserByName(pool, tenant, username);
      if (!account) throw refused("no user of the tenant has the token's name");
      return openSession(account);
    },

    async changePassword(request, ctx) {
      const user = requireOwnAccount(ctx.principal, request.tenant, request.username);
      const { currentPassword, newPassword } = validateChangePassword(request);
      const realm = user.tenant ?? null;
      const keys = throttleKeys(ctx, realm, user.subject);
      await throttle.check(keys);
      const account = await findCredential(pool, realm, user.subject);
      if (!account || account.id !== user.userId) throw notFound("user");
      if (!(await passwords.verify(currentPassword, account.password_hash))) {
        await throttle.failed(keys);
        throw new AppError("invalid_current_password", "the current password is wrong", [
          { field: "current_password", reason: "invalid_current_password", description: "is not the account's password" },
        ]);
      }
      await throttle.succeeded(keys);
      const passwordHash = await passwords.hash(newPassword);
      // The user's other sessions end; the one making the change (if it is a session) stays.
      const keptSession = ctx.principal.credential === "session" ? (ctx.principal.sessionId ?? null) : null;
      const updated = await inStatement(pool, ctx, (db) => updatePasswordHash(db, account, passwordHash, keptSession, actorOf(ctx)));
      if (!updated) throw notFound("user");
      return {};
    },
  };
}
