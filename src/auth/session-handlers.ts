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
import type { LoginAttempt } from "./throttle";
import { findCredential, findUserByName, purgeExpiredRevocations, revokeSession, updatePasswordHash } from "./queries";
import { validateChangePassword, validateExchangeOidcToken, validateLogin } from "./validate";

/** One answer for every failed login: no hint whether the user, the password or the tenant was wrong. */
const loginRefused = () => new AppError("unauthenticated", "invalid username or password");

/**
 * Runs the password check of a reserved attempt; if it ends without checking one (the work
 * queue was full, the state database failed), the attempt is given back before the error goes on.
 */
async function checking<T>(attempt: LoginAttempt, check: () => Promise<T>): Promise<T> {
  try {
    return await check();
  } catch (err) {
    await attempt.release();
    throw err;
  }
}

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
      // Reserved (counted) before any check, so concurrent attempts cannot pass the limit.
      const attempt = await throttle.reserve(ctx, tenant, username);
      const { account, matches } = await checking(attempt, async () => {
        const found = await findCredential(pool, tenant, username);
        // Always runs bcrypt (against a dummy hash when there is no such user): equal timing.
        return { account: found, matches: await passwords.verify(password, found?.password_hash) };
      });
      if (!account || !matches || !account.tenant_accepts_passwords) throw loginRefused(); // counted already
      await attempt.succeeded();
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
      const attempt = await throttle.reserve(ctx, realm, user.subject);
      const account = await checking(attempt, async () => {
        const found = await findCredential(pool, realm, user.subject);
        if (!found || found.id !== user.userId) throw notFound("user");
        return (await passwords.verify(currentPassword, found.password_hash)) ? found : undefined;
      });
      if (!account) {
        throw new AppError("invalid_current_password", "the current password is wrong", [
          { field: "current_password", reason: "invalid_current_password", description: "is not the account's password" },
        ]);
      }
      await attempt.succeeded();
      const passwordHash = await passwords.hash(newPassword);
      // The user's other sessions end; the one making the change (if it is a session) stays.
      const keptSession = ctx.principal.credential === "session" ? (ctx.principal.sessionId ?? null) : null;
      const updated = await inStatement(pool, ctx, (db) => updatePasswordHash(db, account, passwordHash, keptSession, actorOf(ctx)));
      if (!updated) throw notFound("user");
      return {};
    },
  };
}
