// Crash safety of provisioning. A ducklake create is three steps: the row is recorded
// PROVISIONING (one transaction), the Postgres database and its catalog are made on the tenant
// server, and the row becomes READY or FAILED (another statement). A drop is: the row becomes
// DELETING, the database is dropped, the row is deleted. A crash can stop either between steps;
// `settle` finishes or rolls back such a row, and the reconciler runs it for rows nobody works on.
//
// Who works on a row: the process holding the session advisory lock of its name
// (queries.ts lockDatabaseName). A create takes it in the transaction that inserts the row, so
// the row is never visible unlocked while its creator lives; a drop and the reconciler take it
// before they act. A crashed process's session ends and its locks go with it, so a row whose
// lock can be taken is a row nobody works on. Replicas share the state database, hence the locks.
//
// Invariants: the row is recorded before its database is made, and becomes READY only once the
// database holds the whole catalog; so there is no READY row without its database and catalog,
// and no database made by us without a row (`provisioning_started_at` tells a database this row
// made from one that was already there, which is never dropped nor adopted).
//
// FAILED means the create failed and whatever it made was dropped. The row stays visible, with
// the error's reason and a safe message, until DeleteDatabase removes it or a new create of the
// same name in its tenant (or a retry with its request id) replaces it: it never blocks a retry.
// Only repeats that waited on the running attempt answer its error; later ones try again.
import type { Logger } from "pino";
import type { DatabasePool } from "slonik";
import type { PgTarget } from "../config";
import type { CommonQueryMethods } from "../db/sql";
import type { Reason } from "../errors";
import { effectiveTarget, type Servers } from "./provision";
import {
  deleteDatabaseRow,
  findDatabaseById,
  listUnsettledDatabases,
  markDatabaseFailed,
  markDatabaseReady,
  tryLockDatabaseName,
  unlockDatabaseNames,
} from "./queries";
import type { DatabaseRow } from "./rows";
import { openSecrets, type Vault } from "./vault";

export interface LifecycleDeps {
  pool: DatabasePool;
  /** Connections that hold session advisory locks (see db/state.ts). */
  lockPool: DatabasePool;
  /** How many lock connections calls may hold at once (the reconciler has one more). */
  lockSlots: number;
  servers: Servers;
  vault: Vault;
  /** The shared server (the global metastore defaults). */
  defaults: PgTarget;
  logger: Logger;
}

/**
 * The reconciler leaves rows alone until they are this old, although the lock already proves
 * nobody works on them: a creator whose state session dropped mid-way may still be about to
 * send CREATE DATABASE (it refreshes `updated_at` right before sending it).
 */
const RECONCILE_GRACE_MS = 5_000;
const BATCH = 100;

interface Failure {
  reason: Reason;
  message: string;
}

const INTERRUPTED: Failure = { reason: "unavailable", message: "provisioning was interrupted; everything it created was rolled back" };

export function isUnsettled(row: DatabaseRow): boolean {
  return row.status === "PROVISIONING" || row.status === "DELETING";
}

/** The server of a ducklake row, from its stored metastore and secrets. */
function targetOf(deps: Pick<LifecycleDeps, "defaults" | "vault">, row: DatabaseRow): PgTarget {
  return effectiveTarget(deps.defaults, row.metastore, openSecrets(deps.vault, row.id, row.secrets));
}

/**
 * Finishes or rolls back a PROVISIONING or DELETING row; returns the row after (null once
 * deleted). The caller must hold the lock of `row.name` on `conn`. A PROVISIONING row becomes
 * READY when its database holds a whole catalog (everything was made; only the last write was
 * lost); otherwise whatever exists is dropped and the row becomes FAILED with `failure`. Throws,
 * leaving the row as it was, when the tenant server cannot be reached.
 */
export async function settle(deps: LifecycleDeps, conn: CommonQueryMethods, row: DatabaseRow, failure: Failure = INTERRUPTED): Promise<DatabaseRow | null> {
  if (row.status === "DELETING") {
    if (row.kind === "ducklake") await deps.servers.dropDatabase(targetOf(deps, row), row.name);
    await deleteDatabaseRow(conn, row.id);
    return null;
  }
  if (row.status !== "PROVISIONING") return row;
  // Until CREATE DATABASE was about to be sent, a database of this name is not ours to judge.
  if (row.provisioning_started_at !== null) {
    const target = targetOf(deps, row);
    const state = await deps.servers.inspect(target, row.name);
    if (state === "whole") return (await markDatabaseReady(conn, row.id)) ?? findDatabaseById(conn, row.id);
    if (state === "partial") await deps.servers.dropDatabase(target, row.name);
  }
  return (await markDatabaseFailed(conn, row.id, failure.reason, failure.message)) ?? findDatabaseById(conn, row.id);
}

export interface Reconciler {
  /** Runs a pass now, then one every interval. */
  start(): void;
  /** Stops scheduling and waits for a pass in progress. */
  stop(): Promise<void>;
  /** One pass over the unsettled rows; returns how many it settled. */
  runOnce(): Promise<number>;
}

export function createReconciler(deps: LifecycleDeps, intervalMs: number, graceMs = RECONCILE_GRACE_MS): Reconciler {
  const log = deps.logger.child({ component: "reconciler" });
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();
  let stopped = false;

  /** Settles one row if no one else works on it (another replica, a live create or drop). */
  async function reconcileRow(candidate: DatabaseRow): Promise<boolean> {
    return deps.lockPool.connect(async (conn) => {
      if (!(await tryLockDatabaseName(conn, candidate.name))) return false;
      try {
        const row = await findDatabaseById(conn, candidate.id);
        if (!row || !isUnsettled(row)) return false;
        const after = await settle(deps, conn, row);
        log.warn({ database: row.name, from: row.status, to: after?.status ?? "deleted" }, "settled a database left by an interrupted operation");
        return true;
      } finally {
        await unlockDatabaseNames(conn);
      }
    });
  }

  async function runOnce(): Promise<number> {
    let settled = 0;
    for (const row of await listUnsettledDatabases(deps.pool, graceMs, BATCH)) {
      try {
        if (await reconcileRow(row)) settled++;
      } catch (err) {
        // Typically the tenant server is down: the row stays as it is until a later pass.
        log.warn({ database: row.name, reason: (err as { reason?: string }).reason, message: (err as Error).message }, "could not settle a database yet");
      }
    }
    return settled;
  }

  function schedule(delayMs: number): void {
    timer = setTimeout(() => {
      running = runOnce()
        .catch((err: unknown) => log.warn({ message: (err as Error).message }, "reconcile pass failed"))
        .finally(() => {
          if (!stopped) schedule(intervalMs);
        });
    }, delayMs);
    timer.unref();
  }

  return {
    start: () => schedule(0),
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
    runOnce,
  };
}
