// Turns PoolService requests into commands, or field violations.
import type { CreatePoolRequest, DeletePoolRequest, ScalePoolRequest, SetPoolDisabledRequest } from "../../gen/qod/v1/pool";
import { databaseName, NAME_PATTERN, normalizeName, Violations, type DatabaseName } from "../validation";

/** A pool CreatePool makes: server connections per pooler and mode. */
export const MAX_POOL_SIZE = 64;
/** A Supavisor user (made by SupavisorService) may be sized up to this. */
export const MAX_UPSTREAM_POOL_SIZE = 1000;
const MAX_CLIENTS = 10_000;
const PASSWORD = { min: 12, max: 100 };
const PRINTABLE_ASCII = /^[\x21-\x7e]+$/;

export interface CreatePoolCommand {
  tenant: string;
  database: DatabaseName;
  name: string;
  size: number;
  /** Undefined: generate one. */
  password: string | undefined;
  maxClients: number;
}

export function validateCreatePool(request: CreatePoolRequest): CreatePoolCommand {
  const v = new Violations();
  const tenant = v.name("tenant", request.tenant, "invalid_id");
  const database = databaseName(v, "tenant_db", tenant, request.tenantDb);
  const name = v.name("pool", request.pool);
  const size = request.size === 0 ? 1 : request.size;
  if (size < 1 || size > MAX_POOL_SIZE) v.add("size", "invalid_size", `must be between 1 and ${MAX_POOL_SIZE}`);
  const maxClients = request.maxClients === 0 ? 100 : request.maxClients;
  if (maxClients < 1 || maxClients > MAX_CLIENTS) v.add("max_clients", "invalid_size", `must be between 1 and ${MAX_CLIENTS}`);
  const password = request.password === "" ? undefined : request.password;
  if (password !== undefined && !(password.length >= PASSWORD.min && password.length <= PASSWORD.max && PRINTABLE_ASCII.test(password))) {
    v.add("password", "invalid_password", `must be ${PASSWORD.min} to ${PASSWORD.max} printable ASCII characters, without spaces`);
  }
  v.throwIfAny();
  return { tenant, database, name, size, password, maxClients };
}

/**
 * The pool a request names: a QOD pool name (any case, stored lowercase) or, for a Supavisor user,
 * its role name as stored (1 to 63 printable bytes).
 */
function poolName(v: Violations, value: string): string {
  const given = value.trim();
  if (NAME_PATTERN.test(normalizeName(given))) return normalizeName(given);
  if (given === "" || Buffer.byteLength(given) > 63 || /\p{Cc}/u.test(given)) v.add("pool", "invalid_name", "must be a pool's name");
  return given;
}

export function validatePoolRef(request: DeletePoolRequest | SetPoolDisabledRequest): { tenant: string; name: string } {
  const v = new Violations();
  const tenant = v.name("tenant", request.tenant, "invalid_id");
  const name = poolName(v, request.pool);
  v.throwIfAny();
  return { tenant, name };
}

/** `max`: the pool's kind's limit, known once the pool is read. */
export function validateScalePool(request: ScalePoolRequest): { tenant: string; name: string; size: number } {
  const v = new Violations();
  const tenant = v.name("tenant", request.tenant, "invalid_id");
  const name = poolName(v, request.pool);
  if (request.size < 1 || request.size > MAX_UPSTREAM_POOL_SIZE) v.add("size", "invalid_size", `must be between 1 and ${MAX_UPSTREAM_POOL_SIZE}`);
  v.throwIfAny();
  return { tenant, name, size: request.size };
}
