// Turns PoolService requests into commands, or field violations.
import type { CreatePoolRequest, DeletePoolRequest } from "../../gen/qod/v1/pool";
import { databaseName, Violations, type DatabaseName } from "../validation";

export const MAX_POOL_SIZE = 64;

export function validateCreatePool(request: CreatePoolRequest): { tenant: string; database: DatabaseName; name: string; size: number } {
  const v = new Violations();
  const tenant = v.name("tenant", request.tenant, "invalid_id");
  const database = databaseName(v, "tenant_db", tenant, request.tenantDb);
  const name = v.name("pool", request.pool);
  const size = request.size === 0 ? 1 : request.size;
  if (size < 1 || size > MAX_POOL_SIZE) v.add("size", "invalid_size", `must be between 1 and ${MAX_POOL_SIZE}`);
  v.throwIfAny();
  return { tenant, database, name, size };
}

export function validateDeletePool(request: DeletePoolRequest): { tenant: string; name: string } {
  const v = new Violations();
  const tenant = v.name("tenant", request.tenant, "invalid_id");
  const name = v.name("pool", request.pool);
  v.throwIfAny();
  return { tenant, name };
}
