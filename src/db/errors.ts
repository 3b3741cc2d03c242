// Maps database errors to client-safe AppErrors. Constraint names are the contract between the
// migrations and the messages a client sees (STYLE §2.3: uniqueness comes from constraints).
import {
  BackendTerminatedError,
  BackendTerminatedUnexpectedlyError,
  CheckIntegrityConstraintViolationError,
  ConnectionError,
  ForeignKeyIntegrityConstraintViolationError,
  StatementCancelledError,
  StatementTimeoutError,
  UniqueIntegrityConstraintViolationError,
} from "slonik";
import { AppError, type Reason } from "../errors";

/**
 * Every constraint of the state schema (and the unique indexes and triggers that act as one), by
 * name, and what its violation means to a client. `null` marks one no request can break: hitting
 * it is a bug, left unmapped so the errors middleware logs it and answers INTERNAL.
 * test/constraints.test.ts checks that no constraint is missing here.
 */
export const CONSTRAINTS: Readonly<Record<string, { reason: Reason; message: string } | null>> = {
  tenants_pkey: { reason: "exists", message: "tenant already exists" },
  tenants_display_name_key: { reason: "exists", message: "a tenant with this display name already exists" },
  tenants_auth_provider_check: { reason: "invalid_auth_provider", message: "the auth provider is not one the service knows" },
  tenants_ban_check: null,
  databases_pkey: null,
  databases_tenant_id_key: null,
  databases_name_key: { reason: "exists", message: "a database with this name already exists" },
  databases_request_id_key: { reason: "exists", message: "a database was already created with this request id" },
  databases_tenant_fkey: { reason: "not_found", message: "tenant not found" },
  databases_kind_check: { reason: "invalid_kind", message: "the database kind is not one the service knows" },
  databases_status_check: null,
  databases_upstream_tls_check: null,
  databases_ip_version_check: null,
  // Raised by a trigger (migration 0002) when a tenant delete would cascade to a database being created.
  databases_provisioning_check: { reason: "unavailable", message: "a database of this tenant is being provisioned; retry when it is done" },
  pools_pkey: null,
  pools_tenant_name_key: { reason: "exists", message: "a pool with this name already exists in the tenant" },
  pools_tenant_fkey: { reason: "has_pools", message: "the tenant has pools; delete them first" },
  pools_database_fkey: { reason: "has_pools", message: "the database has pools; delete them first" },
  pools_size_check: { reason: "invalid_size", message: "the pool size is out of range" },
  pools_mode_check: { reason: "invalid_mode", message: "the pool mode is transaction or session" },
  pools_max_clients_check: { reason: "invalid_size", message: "max_clients must be at least 1" },
  pools_checkout_timeout_check: { reason: "invalid_size", message: "the checkout timeout must not be negative" },
  pools_role_state_check: null,
  supavisor_tenants_pkey: { reason: "exists", message: "the tenant is already registered" },
  supavisor_tenants_tenant_fkey: { reason: "not_found", message: "tenant not found" },
  supavisor_tenants_database_fkey: { reason: "invalid_tenant_db", message: "this database is the upstream of a Supavisor tenant; it goes when the tenant is deleted" },
  supavisor_tenants_auth_query_check: { reason: "invalid_auth_query", message: "auth_query is required when require_user is false" },
  supavisor_tenants_sizes_check: { reason: "invalid_size", message: "a size or timeout of the tenant is out of range" },
  users_pkey: null,
  users_realm_lower_username_key: { reason: "exists", message: "a user with this name (in any case) already exists" },
  users_tenant_fkey: { reason: "not_found", message: "tenant not found" },
  users_role_check: { reason: "invalid_role", message: "the role is not one the service knows" },
  revoked_tokens_pkey: null,
  access_tokens_pkey: null,
  access_tokens_token_hash_key: null,
  access_tokens_user_fkey: { reason: "not_found", message: "user not found" },
  audit_log_pkey: null,
  login_failures_pkey: null,
};

/** Whether `err` is a unique violation (of `constraint`, or of any): another writer got there first. */
export const isUniqueViolation = (err: unknown, constraint?: string): boolean =>
  err instanceof UniqueIntegrityConstraintViolationError && (constraint === undefined || err.constraint === constraint);

/** SQLSTATE classes that mean the database cannot be reached or is going away. */
const UNAVAILABLE_CODES = /^(08|53|57P0[1-3])/;

function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** The SQLSTATE or socket error code of an error, or of the driver error slonik wraps. */
export function errorCode(err: unknown): string | undefined {
  return sqlState(err) ?? sqlState((err as { cause?: unknown } | null)?.cause);
}

/** Returns an AppError for database errors a client can meet; anything else is returned as is. */
export function mapDatabaseError(err: unknown): unknown {
  if (err instanceof AppError) return err;
  if (
    err instanceof UniqueIntegrityConstraintViolationError ||
    err instanceof ForeignKeyIntegrityConstraintViolationError ||
    err instanceof CheckIntegrityConstraintViolationError
  ) {
    const known = err.constraint && Object.hasOwn(CONSTRAINTS, err.constraint) ? CONSTRAINTS[err.constraint] : undefined;
    if (known) return new AppError(known.reason, known.message, [], { cause: err });
    return err;
  }
  if (err instanceof StatementTimeoutError || err instanceof StatementCancelledError) {
    return new AppError("deadline_exceeded", "the operation ran out of time", [], { cause: err });
  }
  if (err instanceof ConnectionError || err instanceof BackendTerminatedError || err instanceof BackendTerminatedUnexpectedlyError) {
    return new AppError("unavailable", "the state database is unavailable", [], { cause: err });
  }
  const code = errorCode(err);
  if (code && (UNAVAILABLE_CODES.test(code) || code === "ECONNREFUSED" || code === "ECONNRESET" || code === "ETIMEDOUT")) {
    return new AppError("unavailable", "the state database is unavailable", [], { cause: err });
  }
  return err;
}
