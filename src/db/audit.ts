// The audit log: one row per change, written by the very statement that makes the change, so a
// change and its record commit together. Every audit row is built here, by auditRecord: the
// statements of the domains wrap their change with withAuditRow, and CreateTenant passes the
// record to its SQL function (migration 0007), whose kept plans are worth ~30 µs per create.
import type { FragmentSqlToken, IdentifierSqlToken } from "slonik";
import { sql } from "./sql";

/** What can be audited. */
export const AUDIT_ACTIONS = [
  "tenant.create",
  "tenant.setDisabled",
  "tenant.setAuth",
  "tenant.delete",
  "database.create",
  "database.update",
  "database.delete",
  "pool.create",
  "pool.delete",
  "pool.setDisabled",
  "pool.scale",
  "user.create",
  "user.delete",
  "user.password_change",
  "auth.logout",
  "pat.create",
  "pat.revoke",
  "supavisor.put",
  "supavisor.ban",
  "supavisor.unban",
  "supavisor.delete",
  "supavisor.terminate",
  "supavisor.credentials",
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export interface AuditEntry {
  action: AuditAction;
  tenant?: string | null | undefined;
  target?: string;
  /** Never a secret: key names and flags only. */
  details?: Record<string, unknown>;
}

/** Who made the change: the call's principal and request id. */
export interface Actor {
  subject: string;
  requestId: string;
}

/** The call's actor. */
export const actorOf = (ctx: { principal: { subject: string }; requestId: string }): Actor => ({ subject: ctx.principal.subject, requestId: ctx.requestId });

/** An audit row as one jsonb value, the form both the statements here and migration 0007's function read. */
export function auditRecord(actor: Actor, entry: AuditEntry): FragmentSqlToken {
  return sql.fragment`${sql.jsonb({
    actor: actor.subject,
    action: entry.action,
    tenant: entry.tenant ?? null,
    target: entry.target ?? null,
    request_id: actor.requestId,
    details: (entry.details ?? {}) as never,
  })}`;
}

const CHANGED = sql.identifier(["changed"]);

/**
 * The statement `change` (an INSERT, UPDATE or DELETE with RETURNING) with one audit row per row
 * it changed, so a change that matched nothing records nothing. `result` selects the statement's
 * answer from the changed rows, which it is handed by name.
 */
export function withAuditRow(
  actor: Actor,
  entry: AuditEntry,
  change: FragmentSqlToken,
  result: (changed: IdentifierSqlToken) => FragmentSqlToken,
): FragmentSqlToken {
  return sql.fragment`
    WITH ${CHANGED} AS (${change}),
    audit AS (
      INSERT INTO audit_log (actor, action, tenant, target, request_id, details)
      SELECT a.actor, a.action, a.tenant, a.target, a.request_id, a.details
      FROM ${CHANGED}, jsonb_to_record(${auditRecord(actor, entry)})
        AS a(actor text, action text, tenant text, target text, request_id text, details jsonb))
    ${result(CHANGED)}`;
}
