// CreateAccessToken, ListAccessTokens, RevokeAccessToken: a user's personal access tokens,
// managed from a session only. The secret is shown once; only its SHA-256 is stored.
import { requireSession } from "../call/authorize";
import { actorOf } from "../db/audit";
import { inStatement } from "../db/transaction";
import { notFound } from "../errors";
import { newId } from "../ids";
import type { AuthDeps } from "./deps";
import type { AuthHandlers } from "./handler-types";
import { insertAccessToken, listAccessTokens, revokeAccessToken } from "./queries";
import { toAccessToken } from "./rows";
import { newAccessToken } from "./tokens";
import { validateCreateAccessToken, validateRevokeAccessToken } from "./validate";

export function accessTokenHandlers(deps: AuthDeps): Pick<AuthHandlers, "createAccessToken" | "listAccessTokens" | "revokeAccessToken"> {
  const { pool } = deps;
  return {
    async createAccessToken(request, ctx) {
      const session = requireSession(ctx.principal);
      const { name, expiresAt } = validateCreateAccessToken(request, Date.now());
      const { token, hash } = newAccessToken();
      const newToken = { id: newId("pat"), userId: session.userId, name, hash, expiresAt };
      const row = await inStatement(pool, ctx, (db) => insertAccessToken(db, newToken, session.tenant, actorOf(ctx)));
      return { id: row.id, name: row.name, token, expireTime: new Date(row.expires_at) };
    },

    async listAccessTokens(_request, ctx) {
      const session = requireSession(ctx.principal);
      const rows = await listAccessTokens(pool, session.userId);
      return { tokens: rows.map(toAccessToken) };
    },

    async revokeAccessToken(request, ctx) {
      const session = requireSession(ctx.principal);
      const id = validateRevokeAccessToken(request);
      // Another user's token is "not found", exactly like a token that does not exist.
      const revoked = await inStatement(pool, ctx, (db) => revokeAccessToken(db, session.userId, id, session.tenant, actorOf(ctx)));
      if (!revoked) throw notFound("access token");
      return {};
    },
  };
}
