// Row schemas of users and access tokens, and their mapping to the API's messages (which never
// carry a hash).
import { z } from "zod";
import type { AccessToken, User } from "../../gen/qod/v1/auth";
import { ROLES } from "../call/principal";

const Role = z.enum(ROLES);

export const UserRow = z.object({
  id: z.string(),
  tenant: z.string().nullable(),
  username: z.string(),
  role: Role,
  created_at: z.number(),
  /** Sessions issued now carry it; a password change moves it on (migration 0006). */
  session_epoch: z.number(),
});
export type UserRow = z.infer<typeof UserRow>;

/** A user as Login and ChangePassword need it: its hash and whether its tenant admits logins. */
export const CredentialRow = UserRow.extend({
  password_hash: z.string(),
  /** false for a disabled tenant or one whose users authenticate with an OIDC provider. */
  tenant_accepts_passwords: z.boolean(),
});
export type CredentialRow = z.infer<typeof CredentialRow>;

/** The live user behind a session or access token. */
export const AccountRow = z.object({
  id: z.string(),
  tenant: z.string().nullable(),
  username: z.string(),
  role: Role,
});
export type AccountRow = z.infer<typeof AccountRow>;

export const AccessTokenAccountRow = AccountRow.extend({
  token_id: z.string(),
  expires_at: z.number(),
  /** Whether last_used_at is over a minute old (or unset), so it is worth writing. */
  use_is_stale: z.boolean(),
});
export type AccessTokenAccountRow = z.infer<typeof AccessTokenAccountRow>;

export const AccessTokenRow = z.object({
  id: z.string(),
  name: z.string(),
  created_at: z.number(),
  expires_at: z.number(),
  last_used_at: z.number().nullable(),
  revoked_at: z.number().nullable(),
});
export type AccessTokenRow = z.infer<typeof AccessTokenRow>;

export function toUser(row: UserRow): User {
  return {
    id: row.id,
    tenant: row.tenant ?? "",
    username: row.username,
    role: row.role,
    createTime: new Date(row.created_at),
  };
}

export function toAccessToken(row: AccessTokenRow): AccessToken {
  return {
    id: row.id,
    name: row.name,
    createTime: new Date(row.created_at),
    expireTime: new Date(row.expires_at),
    lastUseTime: row.last_used_at === null ? undefined : new Date(row.last_used_at),
    revoked: row.revoked_at !== null,
  };
}
