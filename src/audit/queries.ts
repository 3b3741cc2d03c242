// The audit log: one row per change, written in the change's own transaction or statement.
import type { CommonQueryMethods, FragmentSqlToken } from "slonik";
import { sql } from "../db/sql";
import type { AuthedContext } from "../server/context";

export interface AuditEntry {
  action: string;
  tenant?: string;
  target?: string;
  details?: Record<string, unknown>;
}

/**
 * An audit row as an INSERT to place in the change's own statement, in a data-modifying CTE:
 * `from` names the CTE that made the change, and one audit row is written per row it returned,
 * so a change that matched nothing writes none. Without `from`, one row is written.
 */
export function auditInsert(ctx: Pick<AuthedContext, "principal" | "requestId">, entry: AuditEntry, from?: string): FragmentSqlToken {
  return sql.fragment`
    INSERT INTO audit_log (actor, action, tenant, target, request_id, details)
    SELECT ${ctx.principal.subject}, ${entry.action}, ${entry.tenant ?? null}, ${entry.target ?? null},
           ${ctx.requestId}, ${sql.jsonb((entry.details ?? {}) as never)}
    ${from === undefined ? sql.fragment`` : sql.fragment`FROM ${sql.identifier([from])}`}`;
}

export async function insertAudit(db: CommonQueryMethods, ctx: Pick<AuthedContext, "principal" | "requestId">, entry: AuditEntry): Promise<void> {
  await db.query(sql.typeAlias("void")`${auditInsert(ctx, entry)}`);
}
