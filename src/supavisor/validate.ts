// Turns SupavisorService requests into commands, or field violations: Supavisor's rules (its
// tables and changesets) and the ones it lacks (ranges, the manager rule on update too, CIDRs, one
// PEM certificate). Pure: no I/O. Field paths are the request's proto paths (`tenant.users[0].…`).
import { X509Certificate } from "node:crypto";
import { isIP } from "node:net";
import type { PatchSupavisorTenantRequest, SupavisorTenant, SupavisorUser, UpdateSupavisorAuthCredentialsRequest } from "../../gen/qod/v1/supavisor";
import { IP_VERSIONS, POOL_MODES, type IpVersion, type PoolMode, type UpstreamTlsMode } from "../data-plane";
import { isOneOf, Violations } from "../validation";
import type { UpstreamAddress } from "../db/upstream";

const HOST = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*\.?$/;
/** Control characters, and the invisible ones that reorder or hide text. */
const UNPRINTABLE = /[\p{Cc}\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;
const MAX_NAME_BYTES = 63;
const MAX_PASSWORD_BYTES = 1024;
const MAX_QUERY = 4096;
const MAX_TEXT = 1000;
const MAX_ALLOW_LIST = 100;
export const MAX_POOL_SIZE = 1000;
const MAX_CLIENTS = 100_000;
const MAX_USERS = 100;
const DEFAULT_ALLOW_LIST = ["0.0.0.0/0", "::/0"];

/** The upstream as stored: where, and how the pooler reaches it (its CA kept with `verify-full` only). */
export type Upstream = UpstreamAddress;

/** A user (pool) of the tenant. `password` is undefined for a stored user the request did not change. */
export interface User {
  dbUser: string;
  alias: string;
  password: string | undefined;
  poolSize: number;
  isManager: boolean;
  mode: PoolMode;
  checkoutTimeoutMs: number;
  maxClients: number | null;
}

/** A Supavisor tenant's whole settings, after a request is merged into what is stored. */
export interface TenantSettings {
  upstream: Upstream;
  requireUser: boolean;
  authQuery: string | null;
  enforceSsl: boolean;
  allowList: string[];
  defaultPoolSize: number;
  defaultMaxClients: number;
  clientIdleTimeout: number;
  clientHeartbeatInterval: number;
  sniHostname: string | null;
  availabilityZone: string | null;
  featureFlags: Record<string, unknown>;
  useJit: boolean;
  jitApiUrl: string | null;
  users: User[];
}

/** What a PUT changes of the upstream (given fields only). */
interface UpstreamPatch {
  host?: string;
  port?: number;
  database?: string;
  ipVersion?: IpVersion;
  ssl?: boolean;
  verify?: "none" | "peer";
  ca?: string;
}

export interface PutCommand {
  externalId: string;
  /** The request's fields that were given; merge() lays them over what is stored. */
  tenant: SupavisorTenant;
  upstream: UpstreamPatch;
  /** The new set of users, or undefined to keep the stored one. */
  users: UserPatch[] | undefined;
  allowList: string[] | undefined;
}

export interface UserPatch extends Omit<User, "poolSize" | "password"> {
  password: string | undefined;
  poolSize: number | undefined;
}

const bytes = (value: string) => Buffer.byteLength(value);

function text(v: Violations, field: string, value: string | undefined, max: number, reason: Parameters<Violations["add"]>[1]): string | undefined {
  if (value === undefined) return undefined;
  if (bytes(value) > max) v.add(field, reason, `must be at most ${max} bytes`);
  else if (UNPRINTABLE.test(value)) v.add(field, reason, "must not hold control or bidirectional characters");
  return value;
}

function range(v: Violations, field: string, value: number | undefined, min: number, max: number): number | undefined {
  if (value !== undefined && !(Number.isInteger(value) && value >= min && value <= max)) {
    v.add(field, "invalid_size", `must be a whole number from ${min} to ${max}`);
  }
  return value;
}

/** A role name: what Postgres takes as a user (1 to 63 bytes, printable). */
function roleName(v: Violations, field: string, value: string): string {
  if (value === "") v.add(field, "invalid_username", "is required");
  else text(v, field, value, MAX_NAME_BYTES, "invalid_username");
  return value;
}

function password(v: Violations, field: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (value === "") v.add(field, "invalid_password", "must not be empty");
  else if (bytes(value) > MAX_PASSWORD_BYTES) v.add(field, "invalid_password", `must be at most ${MAX_PASSWORD_BYTES} bytes`);
  else if (value.includes("\u0000")) v.add(field, "invalid_password", "must not hold a NUL character");
  return value;
}

/** `a.b.c.d/n` or `x::/n`, as Supavisor's allow_list takes it (a bare address is not a range). */
export function isCidr(value: string): boolean {
  const slash = value.indexOf("/");
  if (slash < 0) return false;
  const address = value.slice(0, slash);
  const prefix = value.slice(slash + 1);
  const family = isIP(address);
  if (family === 0 || !/^\d{1,3}$/.test(prefix)) return false;
  return Number(prefix) <= (family === 4 ? 32 : 128);
}

/** Exactly one PEM certificate that parses; its canonical PEM. */
function certificate(v: Violations, field: string, value: string): string | null {
  const blocks = value.match(/-----BEGIN CERTIFICATE-----/g)?.length ?? 0;
  try {
    if (blocks !== 1) throw new Error("not one certificate");
    return new X509Certificate(value).toString();
  } catch {
    v.add(field, "invalid_upstream_tls_ca", blocks > 1 ? "must hold exactly one certificate" : "is not a PEM certificate that can be read");
    return null;
  }
}

function userPatch(v: Violations, field: string, user: SupavisorUser): UserPatch {
  const dbUser = roleName(v, `${field}.db_user`, user.dbUser);
  const alias = user.dbUserAlias === undefined || user.dbUserAlias === "" ? dbUser : roleName(v, `${field}.db_user_alias`, user.dbUserAlias);
  if (!isOneOf(POOL_MODES, user.modeType)) v.add(`${field}.mode_type`, "invalid_mode", `must be ${POOL_MODES.join(" or ")}`);
  return {
    dbUser,
    alias,
    password: password(v, `${field}.db_password`, user.dbPassword),
    poolSize: range(v, `${field}.pool_size`, user.poolSize, 1, MAX_POOL_SIZE),
    isManager: user.isManager ?? false,
    mode: isOneOf(POOL_MODES, user.modeType) ? user.modeType : "transaction",
    checkoutTimeoutMs: range(v, `${field}.pool_checkout_timeout`, user.poolCheckoutTimeout, 0, 3_600_000) ?? 60_000,
    maxClients: range(v, `${field}.max_clients`, user.maxClients, 1, MAX_CLIENTS) ?? null,
  };
}

/** Checks each given field of a PUT on its own; merge() checks what depends on the stored tenant. */
export function validatePut(externalId: string, tenant: SupavisorTenant | undefined): PutCommand {
  const v = new Violations();
  const id = v.name("external_id", externalId, "invalid_id");
  const t = tenant ?? ({} as Partial<SupavisorTenant>);
  if (!tenant) v.add("tenant", "invalid_argument", 'is required: the body is {"tenant": {…}}');
  if (t.externalId && t.externalId.trim().toLowerCase() !== id) v.add("tenant.external_id", "invalid_id", "must be the path's external_id");
  const f = (name: string) => `tenant.${name}`;
  if (t.dbHost !== undefined && !(HOST.test(t.dbHost) || isIP(t.dbHost) !== 0)) v.add(f("db_host"), "invalid_upstream", "must be a host name or an IP address");
  range(v, f("db_port"), t.dbPort, 1, 65535);
  if (t.dbDatabase !== undefined) {
    if (t.dbDatabase === "") v.add(f("db_database"), "invalid_upstream", "must not be empty");
    else text(v, f("db_database"), t.dbDatabase, MAX_NAME_BYTES, "invalid_upstream");
  }
  if (t.ipVersion !== undefined && !isOneOf(IP_VERSIONS, t.ipVersion)) v.add(f("ip_version"), "invalid_upstream", `must be ${IP_VERSIONS.join(", ")}`);
  if (t.upstreamVerify !== undefined && t.upstreamVerify !== "none" && t.upstreamVerify !== "peer") v.add(f("upstream_verify"), "invalid_upstream", "must be none or peer");
  text(v, f("auth_query"), t.authQuery, MAX_QUERY, "invalid_auth_query");
  if (t.authQuery === "") v.add(f("auth_query"), "invalid_auth_query", "must not be empty (leave it out instead)");
  range(v, f("default_pool_size"), t.defaultPoolSize, 1, MAX_POOL_SIZE);
  range(v, f("default_max_clients"), t.defaultMaxClients, 1, MAX_CLIENTS);
  range(v, f("client_idle_timeout"), t.clientIdleTimeout, 0, 2_147_483_647);
  range(v, f("client_heartbeat_interval"), t.clientHeartbeatInterval, 0, 2_147_483_647);
  if (t.sniHostname !== undefined && t.sniHostname !== "" && !HOST.test(t.sniHostname)) v.add(f("sni_hostname"), "invalid_upstream", "must be a host name");
  text(v, f("availability_zone"), t.availabilityZone, 64, "invalid_argument");
  if (t.useJit === true) v.add(f("use_jit"), "invalid_argument", "JIT access is not supported by this pooler");
  if (t.jitApiUrl !== undefined && t.jitApiUrl !== "" && !/^https:\/\/[^\s/]+/.test(t.jitApiUrl)) v.add(f("jit_api_url"), "invalid_argument", "must be an https URL");
  const allowList = t.allowList && t.allowList.length > 0 ? t.allowList.map((entry) => entry.trim()) : undefined;
  if (allowList && allowList.length > MAX_ALLOW_LIST) v.add(f("allow_list"), "invalid_allow_list", `must hold at most ${MAX_ALLOW_LIST} ranges`);
  allowList?.forEach((entry, i) => {
    if (!isCidr(entry)) v.add(`${f("allow_list")}[${i}]`, "invalid_allow_list", "must be a CIDR range such as 10.0.0.0/8 or ::/0");
  });
  let users: UserPatch[] | undefined;
  if (t.users && t.users.length > 0) {
    if (t.users.length > MAX_USERS) v.add(f("users"), "invalid_argument", `must hold at most ${MAX_USERS} users`);
    users = t.users.map((user, i) => userPatch(v, `${f("users")}[${i}]`, user));
    const seen = new Set<string>();
    users.forEach((user, i) => {
      if (seen.has(user.dbUser)) v.add(`${f("users")}[${i}].db_user`, "invalid_username", "appears twice");
      seen.add(user.dbUser);
    });
  }
  v.throwIfAny();
  return {
    externalId: id,
    tenant: t as SupavisorTenant,
    upstream: {
      ...(t.dbHost !== undefined && { host: t.dbHost }),
      ...(t.dbPort !== undefined && { port: t.dbPort }),
      ...(t.dbDatabase !== undefined && { database: t.dbDatabase }),
      ...(t.ipVersion !== undefined && { ipVersion: t.ipVersion as IpVersion }),
      ...(t.upstreamSsl !== undefined && { ssl: t.upstreamSsl }),
      ...(t.upstreamVerify !== undefined && { verify: t.upstreamVerify as "none" | "peer" }),
      ...(t.upstreamTlsCa !== undefined && t.upstreamTlsCa !== "" && { ca: t.upstreamTlsCa }),
    },
    users,
    allowList,
  };
}

/** Whether a PUT names where the upstream is: only superusers may (a tenant admin could probe the network). */
export const movesUpstream = (command: PutCommand): boolean =>
  command.upstream.host !== undefined || command.upstream.port !== undefined || command.upstream.ipVersion !== undefined;

/** Whether a PUT changes how the upstream is reached or who logs in: then the credentials are tried again. */
export const touchesUpstream = (command: PutCommand): boolean => Object.keys(command.upstream).length > 0 || command.users !== undefined;

/**
 * The tenant after the PUT: `current` (undefined on create) with the given fields laid over it.
 * Checks the rules that span fields: what a create needs, TLS and its CA, the manager rule, and a
 * password for every new user.
 */
export function merge(command: PutCommand, current: TenantSettings | undefined): TenantSettings {
  const v = new Violations();
  const t = command.tenant;
  const u = command.upstream;
  const f = (name: string) => `tenant.${name}`;
  const required = <T>(name: string, value: T | undefined): T | undefined => {
    if (value === undefined) v.add(f(name), name === "require_user" ? "invalid_require_user" : "invalid_upstream", "is required to create a tenant");
    return value;
  };
  const ssl = u.ssl ?? (current ? current.upstream.tls !== "disable" : false);
  const verify = u.verify ?? (current?.upstream.tls === "verify-full" ? "peer" : "none");
  let ca: string | null = null;
  let tls: UpstreamTlsMode = "disable";
  if (ssl) {
    tls = verify === "peer" ? "verify-full" : "require";
    const given = u.ca ?? (verify === "peer" ? (current?.upstream.ca ?? undefined) : undefined);
    if (given !== undefined) ca = certificate(v, f("upstream_tls_ca"), given);
    else if (verify === "peer") v.add(f("upstream_verify"), "invalid_upstream_tls_ca", "peer needs a CA certificate in upstream_tls_ca");
    if (tls === "require") ca = null;
  }
  const upstream: Upstream = {
    host: u.host ?? current?.upstream.host ?? required("db_host", undefined) ?? "",
    port: u.port ?? current?.upstream.port ?? required("db_port", undefined) ?? 0,
    database: u.database ?? current?.upstream.database ?? required("db_database", undefined) ?? "",
    tls,
    ca,
    ipVersion: u.ipVersion ?? current?.upstream.ipVersion ?? "auto",
  };
  const requireUser = t.requireUser ?? current?.requireUser ?? required("require_user", undefined) ?? true;
  const authQuery = t.authQuery ?? current?.authQuery ?? null;
  const defaultPoolSize = t.defaultPoolSize ?? current?.defaultPoolSize ?? 15;
  const stored = new Map((current?.users ?? []).map((user) => [user.dbUser, user]));
  const users: User[] = command.users
    ? command.users.map((user, i) => {
        const before = stored.get(user.dbUser);
        if (user.password === undefined && !before) v.add(`${f("users")}[${i}].db_password`, "invalid_password", "is required for a new user");
        return { ...user, poolSize: user.poolSize ?? defaultPoolSize };
      })
    : (current?.users ?? []);
  if (!current && users.length === 0) v.add(f("users"), "invalid_argument", "must name at least one user to create a tenant");
  if (!requireUser) {
    if (users.length !== 1) v.add(f("users"), "invalid_require_user", "require_user false needs exactly one user, the manager");
    else if (!users[0].isManager) v.add(`${f("users")}[0].is_manager`, "invalid_require_user", "require_user false needs the user to be the manager");
    if (authQuery === null) v.add(f("auth_query"), "invalid_auth_query", "is required when require_user is false");
  }
  v.throwIfAny();
  return {
    upstream,
    requireUser,
    authQuery,
    enforceSsl: t.enforceSsl ?? current?.enforceSsl ?? false,
    allowList: command.allowList ?? current?.allowList ?? DEFAULT_ALLOW_LIST,
    defaultPoolSize,
    defaultMaxClients: t.defaultMaxClients ?? current?.defaultMaxClients ?? 1000,
    clientIdleTimeout: t.clientIdleTimeout ?? current?.clientIdleTimeout ?? 0,
    clientHeartbeatInterval: t.clientHeartbeatInterval ?? current?.clientHeartbeatInterval ?? 60,
    sniHostname: t.sniHostname === "" ? null : (t.sniHostname ?? current?.sniHostname ?? null),
    availabilityZone: t.availabilityZone === "" ? null : (t.availabilityZone ?? current?.availabilityZone ?? null),
    featureFlags: t.featureFlags ?? current?.featureFlags ?? {},
    useJit: false,
    jitApiUrl: t.jitApiUrl === "" ? null : (t.jitApiUrl ?? current?.jitApiUrl ?? null),
    users,
  };
}

export function validateExternalId(value: string): string {
  const v = new Violations();
  const id = v.name("external_id", value, "invalid_id");
  v.throwIfAny();
  return id;
}

export interface BanCommand {
  externalId: string;
  /** Undefined to unban. */
  ban: { reason: string; until: number | null } | undefined;
}

export function validatePatch(request: PatchSupavisorTenantRequest): BanCommand {
  const v = new Violations();
  const externalId = v.name("external_id", request.externalId, "invalid_id");
  if (!request.banned) {
    v.throwIfAny();
    return { externalId, ban: undefined };
  }
  const reason = request.banReason.trim();
  if (reason === "") v.add("ban_reason", "invalid_ban_reason", "is required to ban a tenant");
  else text(v, "ban_reason", reason, MAX_TEXT, "invalid_ban_reason");
  const until = request.bannedUntil?.getTime();
  if (until !== undefined && !Number.isFinite(until)) v.add("banned_until", "invalid_ban_reason", "is not a time that can be kept");
  v.throwIfAny();
  return { externalId, ban: { reason, until: until ?? null } };
}

export function validateCredentials(request: UpdateSupavisorAuthCredentialsRequest): { externalId: string; dbUser: string; password: string } {
  const v = new Violations();
  const externalId = v.name("external_id", request.externalId, "invalid_id");
  const dbUser = roleName(v, "db_user", request.dbUser);
  if (request.dbPassword === "") v.add("db_password", "invalid_password", "is required");
  const given = password(v, "db_password", request.dbPassword) ?? "";
  v.throwIfAny();
  return { externalId, dbUser, password: given };
}
