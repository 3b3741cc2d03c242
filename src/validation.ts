// Name rules (SPEC §6) and a collector of field violations, shared by every domain's validate.ts.
import { invalid, type AppError, type FieldViolation, type InvalidReason } from "./errors";

/** Tenant names, database suffixes and pool names, after lowercasing. */
export const NAME_PATTERN = /^[a-z][a-z0-9_]{0,62}$/;
/** schemaName, defaultSchema, defaultDatabase: Postgres-style identifiers. */
export const IDENTIFIER_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
/** Postgres keeps NAMEDATALEN-1 bytes of an identifier; longer names are rejected, never truncated. */
export const MAX_IDENTIFIER_BYTES = 63;

/**
 * How a name given in a request is compared and stored: trimmed and lowercased. Authorization
 * (call/authorize.ts) and validation (and so every query) read names through this one function.
 */
export function normalizeName(value: string): string {
  return value.trim().toLowerCase();
}

/** Whether `value` is one of a closed set's values. */
export function isOneOf<T extends string>(values: readonly T[], value: string): value is T {
  return (values as readonly string[]).includes(value);
}

export class Violations {
  private readonly list: FieldViolation[] = [];

  add(field: string, reason: InvalidReason, description: string): this {
    this.list.push({ field, reason, description });
    return this;
  }

  /** Validates a name field against NAME_PATTERN and returns it lowercased. */
  name(field: string, value: string, reason: InvalidReason = "invalid_name"): string {
    const name = normalizeName(value);
    if (name === "") this.add(field, reason, "is required");
    else if (!NAME_PATTERN.test(name)) {
      this.add(field, reason, "must start with a letter and hold only letters, digits and underscores, at most 63 of them");
    }
    return name;
  }

  /** Throws INVALID_ARGUMENT with every violation collected so far. */
  throwIfAny(): void {
    if (this.list.length > 0) throw this.error();
  }

  /** INVALID_ARGUMENT with every violation collected so far (at least one). */
  error(): AppError {
    return invalid(this.list);
  }
}

export interface DatabaseName {
  /** `${tenant}_${suffix}`: the Postgres database's name. */
  full: string;
  suffix: string;
}

/**
 * Composes a database's full name. `value` may be the suffix (`sales`) or already the full name
 * (`acme_sales`). The result must fit 63 bytes: it is rejected, never truncated.
 */
export function databaseName(v: Violations, field: string, tenant: string, value: string): DatabaseName {
  const given = normalizeName(value);
  const suffix = given.startsWith(`${tenant}_`) ? given.slice(tenant.length + 1) : given;
  v.name(field, suffix);
  const full = `${tenant}_${suffix}`;
  if (suffix !== "" && suffix === tenant) v.add(field, "invalid_name", "must differ from the tenant name");
  if (Buffer.byteLength(full) > MAX_IDENTIFIER_BYTES) {
    v.add(field, "invalid_name", `the full name ${tenant}_<name> must fit ${MAX_IDENTIFIER_BYTES} bytes`);
  }
  return { full, suffix };
}
