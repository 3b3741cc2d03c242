// What the edge reads from a startup packet (the tenant, the parameters it passes on) and the
// checks a client passes after authenticating, in their fixed order. Pure functions.
import type { AllowList } from "./allow-list";
import { fatal, type Fatal } from "./fatal";
import { isBanned, type EdgePool, type EdgeTenant } from "./snapshot";

export interface ClientIdentity {
  /** The user name as the tenant knows it. */
  user: string;
  tenant: string;
}

/**
 * The tenant and user a client names, as Supavisor reads them: `reference=<tenant>` in the startup
 * `options` (the user is then taken verbatim), else the user name split at its last dot
 * (`a.b.acme` is user `a.b` of tenant `acme`). Undefined when neither names a tenant.
 */
export function clientIdentity(user: string, options: string | undefined): ClientIdentity | undefined {
  const reference = options === undefined ? undefined : referenceOption(options);
  if (reference !== undefined) return reference === "" ? undefined : { user, tenant: reference };
  const dot = user.lastIndexOf(".");
  if (dot <= 0 || dot === user.length - 1) return undefined;
  return { user: user.slice(0, dot), tenant: user.slice(dot + 1) };
}

/** `reference=x`, `--reference=x` or `-c reference=x` among the options (space separated, `\` escapes). */
function referenceOption(options: string): string | undefined {
  const words: string[] = [];
  let word = "";
  for (let i = 0; i < options.length; i++) {
    const c = options[i];
    if (c === "\\" && i + 1 < options.length) word += options[++i];
    else if (c === " " || c === "\t") {
      if (word) words.push(word);
      word = "";
    } else word += c;
  }
  if (word) words.push(word);
  let found: string | undefined;
  for (let i = 0; i < words.length; i++) {
    let w = words[i];
    if (w === "-c" && i + 1 < words.length) w = words[++i]!;
    else if (w.startsWith("-c")) w = w.slice(2);
    else if (w.startsWith("--")) w = w.slice(2);
    if (w.startsWith("reference=")) found = w.slice("reference=".length);
  }
  return found;
}

/** A startup `replication` value that asks for a replication connection. */
export function wantsReplication(value: string | undefined): boolean {
  return value !== undefined && !["false", "off", "no", "0"].includes(value.toLowerCase());
}

/** Startup parameters PgBouncer 1.18 tracks per client; everything else is not passed on. */
const FORWARDED_PARAMETERS = new Set(["application_name", "client_encoding", "datestyle", "timezone", "standard_conforming_strings"]);

/** The StartupMessage parameters for the engine: its login user, the route, and the client's harmless ones. */
export function upstreamParameters(loginUser: string, route: string, client: ReadonlyMap<string, string>): Map<string, string> {
  const parameters = new Map([
    ["user", loginUser],
    ["database", route],
  ]);
  for (const [name, value] of client) if (FORWARDED_PARAMETERS.has(name.toLowerCase())) parameters.set(name, value);
  return parameters;
}

export interface AdmissionRequest {
  tenant: EdgeTenant;
  allowList: AllowList;
  pool: EdgePool;
  /** Sessions the pool has open now. */
  openSessions: number;
  secure: boolean;
  address: string;
  database: string;
  now: number;
}

/** The first check an authenticated client fails, in the documented order, or undefined. */
export function admissionRefusal(r: AdmissionRequest): Fatal | undefined {
  const { tenant, pool } = r;
  if (isBanned(tenant, r.now)) return fatal.banned(tenant.ban!.reason);
  if (tenant.disabled) return fatal.tenantDisabled(tenant.name);
  if (pool.disabled) return fatal.poolDisabled(pool.name, tenant.name);
  if (tenant.enforceSsl && !r.secure) return fatal.sslRequired();
  if (!r.allowList.allows(r.address)) return fatal.addressNotAllowed(r.address, tenant.name);
  if (r.openSessions >= pool.maxClients) return fatal.tooManyClients(pool.name, tenant.name, pool.maxClients);
  if (r.database !== pool.database) return fatal.wrongDatabase(r.database, pool.name, pool.database);
  return undefined;
}
