// The BOLA matrix: every tenant-scoped RPC, called by a tenant admin of A on tenant B's objects.
// Each must answer PERMISSION_DENIED / `tenant_forbidden` (HTTP 403) whatever B holds, and no
// list may show anything of B. test/authz.test.ts runs it over gRPC; the REST test runs the
// same rows over HTTP by looking up each `rpc`'s google.api.http rule. Requests use the proto3
// JSON field names, so they serve as gRPC requests, REST bodies and query strings alike.
import { status } from "@grpc/grpc-js";
import type { DatabasePool } from "slonik";
import { z } from "zod";
import { sql } from "../../src/db/sql";
import { insertDatabaseRow } from "./fixtures";
import type { Clients } from "./clients";

export type ServiceKey = "tenants" | "databases" | "pools" | "auth";

/**
 * What a request names in B: an object that exists, one that does not, an invalid name (so
 * authorization must come before validation), or a tenant that does not exist at all.
 */
export type Target = "existing" | "missing" | "invalid" | "unknown_tenant";
export const TARGETS: readonly Target[] = ["existing", "missing", "invalid", "unknown_tenant"];

export const BOLA_EXPECTED = { grpcCode: status.PERMISSION_DENIED, httpStatus: 403, reason: "tenant_forbidden" } as const;

export interface BolaFixture {
  /** The attacker's tenant. */
  a: string;
  /** The victim tenant; its name is unique, so finding it in a response means a leak. */
  b: string;
  /** B's objects: a READY database (suffix), a pool on it, an admin user and its password. */
  bDatabase: string;
  bPool: string;
  bUser: string;
  bPassword: string;
  /** Session token of A's tenant admin: the credential every row is called with. */
  attacker: string;
}

export interface BolaCase {
  /** `Service/Method`, e.g. `qod.v1.PoolService/CreatePool`. */
  rpc: string;
  service: ServiceKey;
  /** The generated client's method name. */
  method: string;
  request(f: BolaFixture, target: Target): Record<string, unknown>;
}

export interface BolaList {
  rpc: string;
  service: ServiceKey;
  method: string;
  /** A's own list, which must hold nothing of B. */
  request(f: BolaFixture): Record<string, unknown>;
}

const tenantOf = (f: BolaFixture, target: Target) => (target === "unknown_tenant" ? `${f.b}_ghost` : f.b);
/** An object's name for the target: the real one, an absent one, or one no validator accepts. */
const nameOf = (target: Target, existing: string) => (target === "existing" ? existing : target === "invalid" ? "Bad Name!" : "ghost");
const pageOf = (target: Target) => (target === "invalid" ? { pageToken: "forged" } : {});

export const BOLA_CASES: readonly BolaCase[] = [
  { rpc: "qod.v1.TenantService/GetTenant", service: "tenants", method: "getTenant", request: (f, t) => ({ name: t === "invalid" ? "Bad Name!" : tenantOf(f, t) }) },
  {
    rpc: "qod.v1.TenantService/SetTenantDisabled",
    service: "tenants",
    method: "setTenantDisabled",
    request: (f, t) => ({ name: t === "invalid" ? "Bad Name!" : tenantOf(f, t), disabled: true }),
  },
  {
    rpc: "qod.v1.TenantService/SetTenantAuth",
    service: "tenants",
    method: "setTenantAuth",
    request: (f, t) => ({
      name: tenantOf(f, t),
      authProvider: t === "invalid" ? "ldap" : "keycloak",
      authConfig: { issuer: "https://attacker.example.com/realms/x", realm: "x" },
    }),
  },
  { rpc: "qod.v1.TenantService/DeleteTenant", service: "tenants", method: "deleteTenant", request: (f, t) => ({ name: t === "invalid" ? "Bad Name!" : tenantOf(f, t) }) },

  {
    rpc: "qod.v1.DatabaseService/CreateDatabase",
    service: "databases",
    method: "createDatabase",
    request: (f, t) => ({ tenant: tenantOf(f, t), name: nameOf(t, f.bDatabase), kind: "memory" }),
  },
  { rpc: "qod.v1.DatabaseService/ListDatabases", service: "databases", method: "listDatabases", request: (f, t) => ({ tenant: tenantOf(f, t), ...pageOf(t) }) },
  { rpc: "qod.v1.DatabaseService/GetDatabase", service: "databases", method: "getDatabase", request: (f, t) => ({ tenant: tenantOf(f, t), name: nameOf(t, f.bDatabase) }) },
  {
    rpc: "qod.v1.DatabaseService/UpdateDatabase",
    service: "databases",
    method: "updateDatabase",
    request: (f, t) => ({ tenant: tenantOf(f, t), name: nameOf(t, f.bDatabase), defaultSchema: "pwned" }),
  },
  {
    rpc: "qod.v1.DatabaseService/DeleteDatabase",
    service: "databases",
    method: "deleteDatabase",
    request: (f, t) => ({ tenant: tenantOf(f, t), name: nameOf(t, f.bDatabase), dropDatabase: true }),
  },

  {
    rpc: "qod.v1.PoolService/CreatePool",
    service: "pools",
    method: "createPool",
    request: (f, t) => ({ tenant: tenantOf(f, t), tenantDb: nameOf(t, f.bDatabase), pool: nameOf(t, f.bPool), size: t === "invalid" ? 999 : 1 }),
  },
  { rpc: "qod.v1.PoolService/ListPools", service: "pools", method: "listPools", request: (f, t) => ({ tenant: tenantOf(f, t), ...pageOf(t) }) },
  { rpc: "qod.v1.PoolService/DeletePool", service: "pools", method: "deletePool", request: (f, t) => ({ tenant: tenantOf(f, t), pool: nameOf(t, f.bPool) }) },
  {
    rpc: "qod.v1.PoolService/SetPoolDisabled",
    service: "pools",
    method: "setPoolDisabled",
    request: (f, t) => ({ tenant: tenantOf(f, t), pool: nameOf(t, f.bPool), disabled: true }),
  },
  {
    rpc: "qod.v1.PoolService/ScalePool",
    service: "pools",
    method: "scalePool",
    request: (f, t) => ({ tenant: tenantOf(f, t), pool: nameOf(t, f.bPool), size: t === "invalid" ? 0 : 5 }),
  },

  {
    rpc: "qod.v1.AuthService/CreateUser",
    service: "auth",
    method: "createUser",
    request: (f, t) => ({ tenant: tenantOf(f, t), username: nameOf(t, f.bUser), password: "attacker-password", role: "admin" }),
  },
  { rpc: "qod.v1.AuthService/ListUsers", service: "auth", method: "listUsers", request: (f, t) => ({ tenant: tenantOf(f, t), ...pageOf(t) }) },
  { rpc: "qod.v1.AuthService/DeleteUser", service: "auth", method: "deleteUser", request: (f, t) => ({ tenant: tenantOf(f, t), username: nameOf(t, f.bUser) }) },
  {
    rpc: "qod.v1.AuthService/ChangePassword",
    service: "auth",
    method: "changePassword",
    request: (f, t) => ({ tenant: tenantOf(f, t), username: nameOf(t, f.bUser), currentPassword: f.bPassword, newPassword: "attacker-password" }),
  },
];

export const BOLA_LISTS: readonly BolaList[] = [
  { rpc: "qod.v1.TenantService/ListTenants", service: "tenants", method: "listTenants", request: () => ({}) },
  { rpc: "qod.v1.DatabaseService/ListDatabases", service: "databases", method: "listDatabases", request: (f) => ({ tenant: f.a }) },
  { rpc: "qod.v1.PoolService/ListPools", service: "pools", method: "listPools", request: (f) => ({ tenant: f.a }) },
  { rpc: "qod.v1.AuthService/ListUsers", service: "auth", method: "listUsers", request: (f) => ({ tenant: f.a }) },
  { rpc: "qod.v1.AuthService/ListAccessTokens", service: "auth", method: "listAccessTokens", request: () => ({}) },
];

/**
 * Builds A and B with an admin each, and B's database, pool and an access token, through the
 * API with the static key. B's database is written directly (a READY ducklake row over an empty
 * Postgres database, test/helpers/fixtures.ts): provisioning a catalog is not what is tested.
 */
export async function createBolaFixture(clients: Clients, pool: DatabasePool, prefix: string): Promise<BolaFixture> {
  const a = `${prefix}_a`;
  const b = `${prefix}_b`;
  const bPassword = "victim-password-123";
  const bDatabase = "sales";
  const bPool = "bi";
  const bUser = `${b}.owner`;
  for (const name of [a, b]) await clients.tenants.createTenant({ name });
  await clients.auth.createUser({ tenant: a, username: "attacker", password: "attacker-password", role: "admin" });
  await clients.auth.createUser({ tenant: b, username: bUser, password: bPassword, role: "admin" });
  await insertDatabaseRow(pool, b, bDatabase);
  await clients.pools.createPool({ tenant: b, tenantDb: bDatabase, pool: bPool, size: 1 });
  const victim = await clients.auth.login({ tenant: b, username: bUser, password: bPassword }, {});
  await clients.auth.createAccessToken({ name: `${b} token` }, { apiKey: victim.token });
  const attacker = await clients.auth.login({ tenant: a, username: "attacker", password: "attacker-password" }, {});
  return { a, b, bDatabase, bPool, bUser, bPassword, attacker: attacker.token };
}

/** B as it must still be after the matrix ran: every denied call changed nothing. */
export async function bolaVictimState(pool: DatabasePool, f: BolaFixture): Promise<unknown> {
  return pool.one(sql.type(
    z.object({ disabled: z.boolean(), auth_provider: z.string(), databases: z.array(z.string()), pools: z.array(z.string()), users: z.array(z.string()) }),
  )`
    SELECT t.disabled, t.auth_provider,
           ARRAY(SELECT d.name FROM databases d WHERE d.tenant = t.name ORDER BY d.name) AS databases,
           ARRAY(SELECT p.name || ' size ' || p.size || ' disabled ' || p.disabled FROM pools p WHERE p.tenant = t.name ORDER BY p.name) AS pools,
           ARRAY(SELECT u.username FROM users u WHERE u.tenant = t.name ORDER BY u.username) AS users
    FROM tenants t WHERE t.name = ${f.b}`);
}
