// The Postgres roles of pools on a provisioned database (SPEC §10): each pool logs in as a role of
// its own, LOGIN and nothing more (never a superuser), whose rights come from a group role per
// database: CONNECT on that database only (PUBLIC loses it), and everything on its catalog's schema.
// Objects a pool's clients create (DuckLake's inlined tables) stay usable by the database's other
// pools (default privileges to the group) and pass to the group when the pool goes. Statements here
// run on the database's server, never in a state transaction; every step can be run again.
import type { DatabasePool } from "slonik";
import { z } from "zod";
import { sql } from "../db/sql";

/** `td-<hex>` → `qod_db_<hex>`: the group role of a database. */
export const groupRoleOf = (databaseId: string): string => `qod_db_${databaseId.replace(/^td-/, "")}`;
/** `p-<hex>` → `qod_p_<hex>`: the role a pool logs in as. */
export const poolRoleOf = (poolId: string): string => `qod_p_${poolId.replace(/^p-/, "")}`;

const Exists = z.object({ exists: z.boolean() });
const voidQuery = sql.typeAlias("void");
/** SQLSTATE of CREATE ROLE when another session made it first. */
const DUPLICATE_OBJECT = "42710";

const roleExists = (admin: DatabasePool, role: string) =>
  admin.oneFirst(sql.type(Exists)`SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ${role}) AS exists`);

async function createRoleOnce(admin: DatabasePool, role: string, options: ReturnType<typeof sql.fragment>): Promise<void> {
  if (await roleExists(admin, role)) return;
  try {
    await admin.query(voidQuery`CREATE ROLE ${sql.identifier([role])} WITH ${options}`);
  } catch (err) {
    const code = (err as { cause?: { code?: string } }).cause?.code ?? (err as { code?: string }).code;
    if (code !== DUPLICATE_OBJECT) throw err;
  }
}

export interface PoolRole {
  databaseId: string;
  poolId: string;
  /** The pool password's SCRAM verifier: the server stores it as is, so the password itself is never sent. */
  verifier: string;
}

/**
 * Makes (or brings back in line) the pool's role and its database's group. `admin` is a pool on the
 * server's maintenance database, `db` one on the pool's database.
 */
export async function ensurePoolRole(admin: DatabasePool, db: DatabasePool, database: string, spec: PoolRole): Promise<void> {
  const group = sql.identifier([groupRoleOf(spec.databaseId)]);
  const role = sql.identifier([poolRoleOf(spec.poolId)]);
  const limits = sql.fragment`NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS`;
  const password = sql.fragment`PASSWORD ${sql.literalValue(spec.verifier)}`;
  await createRoleOnce(admin, groupRoleOf(spec.databaseId), sql.fragment`NOLOGIN ${limits}`);
  await createRoleOnce(admin, poolRoleOf(spec.poolId), sql.fragment`LOGIN INHERIT ${limits} ${password}`);
  // The service's user need not be a superuser (CREATEDB and CREATEROLE do): being a member of the
  // roles it made lets it set their default privileges, reassign what they own and end their sessions.
  await admin.query(voidQuery`GRANT ${group}, ${role} TO CURRENT_USER`);
  // Only a superuser may name SUPERUSER, REPLICATION or BYPASSRLS in an ALTER ROLE (Postgres 16+),
  // even to turn them off; CREATE ROLE above set them, and nothing else changes them.
  await admin.query(voidQuery`ALTER ROLE ${role} WITH LOGIN INHERIT NOCREATEDB NOCREATEROLE ${password}`);
  await admin.query(voidQuery`GRANT ${group} TO ${role}`);
  const target = sql.identifier([database]);
  await admin.query(voidQuery`REVOKE ALL ON DATABASE ${target} FROM PUBLIC`);
  await admin.query(voidQuery`GRANT CONNECT, TEMPORARY ON DATABASE ${target} TO ${group}`);
  await db.query(voidQuery`GRANT USAGE, CREATE ON SCHEMA public TO ${group}`);
  await db.query(voidQuery`GRANT ALL ON ALL TABLES IN SCHEMA public TO ${group}`);
  await db.query(voidQuery`GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO ${group}`);
  await db.query(voidQuery`ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO ${group}`);
  await db.query(voidQuery`ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO ${group}`);
  await db.query(voidQuery`ALTER DEFAULT PRIVILEGES FOR ROLE ${role} IN SCHEMA public GRANT ALL ON TABLES TO ${group}`);
  await db.query(voidQuery`ALTER DEFAULT PRIVILEGES FOR ROLE ${role} IN SCHEMA public GRANT ALL ON SEQUENCES TO ${group}`);
}

/**
 * Drops the pool's role: what it owns in its database passes to the group, its privileges go, its
 * sessions (the poolers' server connections) are ended, then the role. `db` is undefined when the
 * database no longer exists.
 */
export async function dropPoolRole(admin: DatabasePool, db: DatabasePool | undefined, spec: Omit<PoolRole, "verifier">): Promise<void> {
  const name = poolRoleOf(spec.poolId);
  if (!(await roleExists(admin, name))) return;
  const role = sql.identifier([name]);
  if (db) {
    await db.query(voidQuery`REASSIGN OWNED BY ${role} TO ${sql.identifier([groupRoleOf(spec.databaseId)])}`);
    await db.query(voidQuery`DROP OWNED BY ${role}`);
  }
  await admin.query(sql.type(z.object({ ended: z.boolean().nullable() }))`
    SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity WHERE usename = ${name}`);
  await admin.query(voidQuery`DROP ROLE IF EXISTS ${role}`);
}
