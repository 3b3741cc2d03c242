// The reconciler: a timer that has the lifecycle settle abandoned rows (lifecycle.ts), at start
// and then every interval. Safe with several replicas: each row is settled under its lock.
import type { Logger } from "pino";
import type { Metrics } from "../metrics";

export interface Reconciler {
  /** Runs a pass now, then one every interval; resolves when the first pass is over. */
  start(): Promise<void>;
  /** Stops scheduling and waits for a pass in progress. */
  stop(): Promise<void>;
}

/** `passes` counts each pass by outcome; what a pass settles, the lifecycle counts. */
export function createReconciler(pass: () => Promise<number>, intervalMs: number, logger: Logger, passes: Metrics["reconcilerPasses"]): Reconciler {
  const log = logger.child({ component: "reconciler" });
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();
  let stopped = false;

  function run(): Promise<void> {
    const done = pass().then(
      (settled) => {
        passes.inc({ outcome: "ok" });
        if (settled > 0) log.info({ settled }, "reconcile pass settled rows left by interrupted operations");
      },
      (err: unknown) => {
        passes.inc({ outcome: "failed" });
        log.warn({ message: (err as Error).message }, "reconcile pass failed");
      },
    );
    running = done.finally(() => {
      if (!stopped) schedule();
    });
    return done;
  }

  function schedule(): void {
    timer = setTimeout(() => void run(), intervalMs);
    timer.unref();
  }

  return {
    start: () => run(),
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
