// The audit log: one row per change, written in the change's own transaction.
import type { CommonQueryMethods } from "slonik";
import { sql } from "../db/sql";
import type { AuthedContext } from "../server/context";

export interface AuditEntry {
  action: string;
  tenant?: string;
  target?: string;
  details?: Record<string, unknown>;
}

export async function insertAudit(db: CommonQueryMethods, ctx: Pick<AuthedContext, "principal" | "requestId">, entry: AuditEntry): Promise<void> {
  await db.query(sql.typeAlias("void")`
    INSERT INTO audit_log (actor, action, tenant, target, request_id, details)
    VALUES (${ctx.principal.subject}, ${entry.action}, ${entry.tenant ?? null}, ${entry.target ?? null},
            ${ctx.requestId}, ${sql.jsonb((entry.details ?? {}) as never)})`);
}
