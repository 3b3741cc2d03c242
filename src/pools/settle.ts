// Pools a crash left half made or half dropped (role_state `creating` or `dropping`): the
// reconciler takes them back, dropping their role and then their row. A `creating` pool whose
// CreatePool never answered is not finished: its creator never received its password.
import type { Logger } from "pino";
import type { DatabasePool } from "slonik";
import type { Lifecycle } from "../databases";
import type { Metrics } from "../metrics";
import { deletePoolRow, listUnsettledPools } from "./queries";

/**
 * Far longer than a CreatePool or DeletePool takes (a few statements on one server), so the
 * reconciler never takes a pool from a call still working on it.
 */
export const POOL_GRACE_MS = 120_000;

/** Drops the role and the row of each pool left unsettled for `graceMs`; returns how many it settled. */
export async function settleAbandonedPools(
  pool: DatabasePool,
  roles: Pick<Lifecycle, "dropPoolRole">,
  logger: Logger,
  actions: Metrics["reconcilerActions"],
  graceMs = POOL_GRACE_MS,
): Promise<number> {
  let settled = 0;
  for (const row of await listUnsettledPools(pool, graceMs)) {
    try {
      await roles.dropPoolRole({ databaseId: row.database_id, poolId: row.id });
      await deletePoolRow(pool, row.id);
      actions.inc({ resource: "pool", from: row.role_state, to: "deleted" });
      logger.warn({ tenant: row.tenant, pool: row.id, from: row.role_state }, "took back a pool left by an interrupted CreatePool or DeletePool");
      settled++;
    } catch (err) {
      logger.warn({ pool: row.id, reason: (err as { reason?: string }).reason }, "could not take back a pool yet");
    }
  }
  return settled;
}
