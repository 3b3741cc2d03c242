// All SQL of the auth domain: users, session revocations, access tokens and login failures.
// A realm is a tenant name, or null for the superuser realm. Usernames are compared
// case-insensitively: `coalesce(tenant, '')` and `lower(username)` match the
// users_realm_lower_username_key index (migration 0008).
import type { CommonQueryMethods } from "slonik";
import { z } from "zod";
import type { Role } from "../call/principal";
import { withAuditRow, type Actor } from "../db/audit";
import { sql } from "../db/sql";
import type { OneStatement } from "../db/transaction";
import type { Page } from "../pagination";
import { AccessTokenAccountRow, AccessTokenRow, AccountRow, CredentialRow, UserRow } from "./rows";

const userColumns = sql.fragment`u.id, u.tenant, u.username, u.role, u.created_at, u.session_epoch`;
const inRealm = (tenant: string | null) => sql.fragment`coalesce(u.tenant, '') = ${tenant ?? ""}`;
const named = (username: string) => sql.fragment`lower(u.username) = lower(${username})`;
const Id = z.object({ id: z.string() });

export interface NewUser {
  id: string;
  tenant: string | null;
  username: string;
  passwordHash: string;
  role: Role;
}

export function insertUser(db: OneStatement, user: NewUser, actor: Actor): Promise<UserRow> {
  const audit = { action: "user.create", tenant: user.tenant, target: user.username, details: { role: user.role } } as const;
  return db.one(sql.type(UserRow)`${withAuditRow(
    actor,
    audit,
    sql.fragment`
      INSERT INTO users AS u (id, tenant, username, password_hash, role)
      VALUES (${user.id}, ${user.tenant}, ${user.username}, ${user.passwordHash}, ${user.role})
      RETURNING ${userColumns}`,
    (changed) => sql.fragment`SELECT * FROM ${changed}`,
  )}`);
}

/** Inserts the user unless its realm has one of that name (replicas may race); true if inserted. */
export async function insertUserIfAbsent(db: CommonQueryMethods, user: NewUser): Promise<boolean> {
  const result = await db.query(sql.typeAlias("void")`
    INSERT INTO users (id, tenant, username, password_hash, role)
    VALUES (${user.id}, ${user.tenant}, ${user.username}, ${user.passwordHash}, ${user.role})
    ON CONFLICT ((coalesce(tenant, '')), (lower(username))) DO NOTHING`);
  return result.rowCount > 0;
}

/** A user with its password hash, and whether its tenant (if any) is enabled and uses passwords. */
export function findCredential(db: CommonQueryMethods, tenant: string | null, username: string): Promise<CredentialRow | null> {
  return db.maybeOne(sql.type(CredentialRow)`
    SELECT ${userColumns}, u.password_hash,
           coalesce(u.tenant IS NULL OR (NOT t.disabled AND t.auth_provider = 'db'), false) AS tenant_accepts_passwords
    FROM users u LEFT JOIN tenants t ON t.name = u.tenant
    WHERE ${inRealm(tenant)} AND ${named(username)}`);
}

export function findUserByName(db: CommonQueryMethods, tenant: string, username: string): Promise<UserRow | null> {
  return db.maybeOne(sql.type(UserRow)`SELECT ${userColumns} FROM users u WHERE ${inRealm(tenant)} AND ${named(username)}`);
}

/** One page of a realm's users ordered by username. */
export function listUsers(db: CommonQueryMethods, tenant: string | null, page: Page): Promise<readonly UserRow[]> {
  return db.any(sql.type(UserRow)`
    SELECT ${userColumns} FROM users u
    WHERE ${inRealm(tenant)} ${page.after === undefined ? sql.fragment`` : sql.fragment`AND u.username > ${page.after}`}
    ORDER BY u.username
    LIMIT ${page.limit + 1}`);
}

/** Deletes a user (its access tokens go by cascade); false when absent. */
export async function deleteUser(db: OneStatement, tenant: string | null, username: string, actor: Actor): Promise<boolean> {
  const row = await db.maybeOne(sql.type(Id)`${withAuditRow(
    actor,
    { action: "user.delete", tenant, target: username },
    sql.fragment`DELETE FROM users u WHERE ${inRealm(tenant)} AND ${named(username)} RETURNING u.id`,
    (changed) => sql.fragment`SELECT id FROM ${changed}`,
  )}`);
  return row !== null;
}

/**
 * Sets a new password and ends the account's sessions (its epoch moves on), except
 * `keptSession` (the jti of the session the change was made with, if any).
 */
export async function updatePasswordHash(
  db: OneStatement,
  account: { id: string; tenant: string | null; username: string },
  passwordHash: string,
  keptSession: string | null,
  actor: Actor,
): Promise<boolean> {
  const row = await db.maybeOne(sql.type(Id)`${withAuditRow(
    actor,
    { action: "user.password_change", tenant: account.tenant, target: account.username },
    sql.fragment`
      UPDATE users
      SET password_hash = ${passwordHash}, updated_at = now(), session_epoch = session_epoch + 1, kept_session = ${keptSession}
      WHERE id = ${account.id} RETURNING id`,
    (changed) => sql.fragment`SELECT id FROM ${changed}`,
  )}`);
  return row !== null;
}

/**
 * The user behind a session, if the session still counts: the user exists, its tenant is not
 * disabled, the token was not revoked, and no password change since it was issued ended it
 * (migration 0006). Primary-key lookups only: this runs on every call.
 */
export function findSessionAccount(db: CommonQueryMethods, session: { userId: string; jti: string; epoch: number }): Promise<AccountRow | null> {
  return db.maybeOne(sql.type(AccountRow)`
    SELECT u.id, u.tenant, u.username, u.role
    FROM users u LEFT JOIN tenants t ON t.name = u.tenant
    WHERE u.id = ${session.userId} AND NOT coalesce(t.disabled, false)
      AND (u.session_epoch = ${session.epoch} OR u.kept_session = ${session.jti})
      AND NOT EXISTS (SELECT 1 FROM revoked_tokens r WHERE r.jti = ${session.jti})`);
}

/** Records a revoked session (Logout) until it would have expired anyway. */
export async function revokeSession(
  db: OneStatement,
  session: { jti: string; expiresAt: number; tenant: string | undefined; subject: string },
  actor: Actor,
): Promise<void> {
  await db.query(sql.typeAlias("void")`${withAuditRow(
    actor,
    { action: "auth.logout", tenant: session.tenant, target: session.subject },
    sql.fragment`
      INSERT INTO revoked_tokens (jti, expires_at) VALUES (${session.jti}, ${sql.timestamp(new Date(session.expiresAt))})
      ON CONFLICT (jti) DO NOTHING RETURNING jti`,
    (changed) => sql.fragment`SELECT FROM ${changed}`,
  )}`);
}

/** Drops the records of revoked sessions that have expired anyway. */
export async function purgeExpiredRevocations(db: CommonQueryMethods): Promise<void> {
  await db.query(sql.typeAlias("void")`DELETE FROM revoked_tokens WHERE expires_at < now()`);
}

export interface NewAccessToken {
  id: string;
  userId: string;
  name: string;
  hash: Buffer;
  expiresAt: number;
}

const accessTokenColumns = sql.fragment`a.id, a.name, a.created_at, a.expires_at, a.last_used_at, a.revoked_at`;

export function insertAccessToken(db: OneStatement, token: NewAccessToken, tenant: string | undefined, actor: Actor): Promise<AccessTokenRow> {
  return db.one(sql.type(AccessTokenRow)`${withAuditRow(
    actor,
    { action: "pat.create", tenant, target: token.id, details: { name: token.name } },
    sql.fragment`
      INSERT INTO access_tokens AS a (id, user_id, name, token_hash, expires_at)
      VALUES (${token.id}, ${token.userId}, ${token.name}, ${sql.binary(token.hash)}, ${sql.timestamp(new Date(token.expiresAt))})
      RETURNING ${accessTokenColumns}`,
    (changed) => sql.fragment`SELECT * FROM ${changed}`,
  )}`);
}

export function listAccessTokens(db: CommonQueryMethods, userId: string): Promise<readonly AccessTokenRow[]> {
  return db.any(sql.type(AccessTokenRow)`
    SELECT ${accessTokenColumns} FROM access_tokens a WHERE a.user_id = ${userId} ORDER BY a.created_at DESC, a.id DESC`);
}

/** Revokes one of a user's tokens (again revoking a revoked one keeps its first time); false if it is not theirs. */
export async function revokeAccessToken(db: OneStatement, userId: string, id: string, tenant: string | undefined, actor: Actor): Promise<boolean> {
  const row = await db.maybeOne(sql.type(Id)`${withAuditRow(
    actor,
    { action: "pat.revoke", tenant, target: id },
    sql.fragment`UPDATE access_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = ${id} AND user_id = ${userId} RETURNING id`,
    (changed) => sql.fragment`SELECT id FROM ${changed}`,
  )}`);
  return row !== null;
}

/** The user behind a live access token: not revoked, not expired, tenant not disabled. */
export function findAccessTokenAccount(db: CommonQueryMethods, hash: Buffer): Promise<AccessTokenAccountRow | null> {
  return db.maybeOne(sql.type(AccessTokenAccountRow)`
    SELECT u.id, u.tenant, u.username, u.role, a.id AS token_id, a.expires_at,
           (a.last_used_at IS NULL OR a.last_used_at < now() - interval '1 minute') AS use_is_stale
    FROM access_tokens a
    JOIN users u ON u.id = a.user_id
    LEFT JOIN tenants t ON t.name = u.tenant
    WHERE a.token_hash = ${sql.binary(hash)} AND a.revoked_at IS NULL AND a.expires_at > now()
      AND NOT coalesce(t.disabled, false)`);
}

/** Stamps a token's use at most once a minute, whichever replica saw it. */
export async function touchAccessToken(db: CommonQueryMethods, id: string): Promise<void> {
  await db.query(sql.typeAlias("void")`
    UPDATE access_tokens SET last_used_at = now()
    WHERE id = ${id} AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')`);
}

const windowStart = (windowSec: number) => sql.fragment`now() - make_interval(secs => ${windowSec})`;
const Admitted = z.object({ admitted: z.boolean() });

/** The counters of one login attempt (auth/throttle.ts). */
export interface AttemptKeys {
  pair: string;
  source: string;
  account: string;
}

/**
 * Counts one attempt and answers whether it may go on, in one statement: the pair and the source
 * are counted first (a new window starts after the old one ends), and the account only when both
 * are within `perSource`, then it must be within `perAccount`. Row locks serialise concurrent
 * attempts on a key, so each sees the counts before it. Keys lock in one order (pair:, source:,
 * user:), so concurrent attempts never deadlock. Other keys' finished windows are dropped on the
 * way (skipping rows another call holds), or every source that ever failed would stay forever.
 */
export async function reserveLoginAttempt(
  db: CommonQueryMethods,
  keys: AttemptKeys,
  limits: { perSource: number; perAccount: number },
  windowSec: number,
): Promise<boolean> {
  const all = sql.array([keys.pair, keys.source, keys.account], "text");
  const count = sql.fragment`
    ON CONFLICT (key) DO UPDATE SET
      failures = CASE WHEN login_failures.window_started_at > ${windowStart(windowSec)} THEN login_failures.failures + 1 ELSE 1 END,
      window_started_at = CASE WHEN login_failures.window_started_at > ${windowStart(windowSec)} THEN login_failures.window_started_at ELSE now() END
    RETURNING failures`;
  return db.oneFirst(sql.type(Admitted)`
    WITH purged AS (
      DELETE FROM login_failures WHERE key IN (
        SELECT key FROM login_failures
        WHERE window_started_at <= ${windowStart(windowSec)} AND key <> ALL(${all})
        FOR UPDATE SKIP LOCKED)),
    near AS (
      INSERT INTO login_failures (key, failures) VALUES (${keys.pair}, 1), (${keys.source}, 1)
      ${count}),
    near_ok AS (SELECT bool_and(failures <= ${limits.perSource}) AS ok FROM near),
    account AS (
      INSERT INTO login_failures (key, failures) SELECT ${keys.account}, 1 FROM near_ok WHERE ok
      ${count})
    SELECT (SELECT ok FROM near_ok) AND coalesce((SELECT failures <= ${limits.perAccount} FROM account), false) AS admitted`);
}

/**
 * A right password: the pair and the account start over (their rows go when their window
 * ends); the source gets its attempt back. One UPDATE, whose index scan locks the keys in the
 * order reserveLoginAttempt does.
 */
export async function clearLoginAttempt(db: CommonQueryMethods, keys: AttemptKeys): Promise<void> {
  await db.query(sql.typeAlias("void")`
    UPDATE login_failures SET failures = CASE WHEN key = ${keys.source} THEN greatest(failures - 1, 0) ELSE 0 END
    WHERE key = ANY(${sql.array([keys.pair, keys.source, keys.account], "text")})`);
}

/** An attempt whose password was never checked: every key gets it back. */
export async function releaseLoginAttempt(db: CommonQueryMethods, keys: AttemptKeys): Promise<void> {
  await db.query(sql.typeAlias("void")`
    UPDATE login_failures SET failures = greatest(failures - 1, 0)
    WHERE key = ANY(${sql.array([keys.pair, keys.source, keys.account], "text")})`);
}
