// Whether the state database answers: a small query on the calls' pool every interval, so the
// gRPC health service (and an HTTP readiness probe) says NOT_SERVING while calls cannot succeed,
// and SERVING again as soon as they can.
import type { Logger } from "pino";
import type { DatabasePool } from "slonik";
import { sql } from "./sql";

export interface StateProbe {
  /** Whether the last probe reached the state database (true until one fails). */
  readonly ready: boolean;
  /** Probes now and then every interval; `onChange` hears each change. */
  start(): void;
  /** Stops probing and waits for a probe in flight. */
  stop(): Promise<void>;
}

export interface ProbeOptions {
  intervalMs: number;
  /** A probe not answered within this counts as a failure. */
  timeoutMs: number;
}

export const DEFAULT_PROBE: ProbeOptions = { intervalMs: 1_000, timeoutMs: 2_000 };

export function createStateProbe(pool: DatabasePool, logger: Logger, onChange: (ready: boolean) => void, options: ProbeOptions = DEFAULT_PROBE): StateProbe {
  const log = logger.child({ component: "state-probe" });
  let ready = true;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let stopped = true;

  async function probe(): Promise<boolean> {
    let timeout: NodeJS.Timeout | undefined;
    const late = new Promise<false>((resolve) => (timeout = setTimeout(() => resolve(false), options.timeoutMs)));
    const answered = pool.query(sql.typeAlias("void")`SELECT`).then(
      () => true,
      () => false,
    );
    try {
      return await Promise.race([answered, late]);
    } finally {
      clearTimeout(timeout);
    }
  }

  function run(): void {
    running = probe().then((now) => {
      if (now !== ready) {
        ready = now;
        if (now) log.info("the state database answers again");
        else log.warn("the state database does not answer");
        onChange(now);
      }
      if (!stopped) {
        timer = setTimeout(run, options.intervalMs);
        timer.unref();
      }
    });
  }

  return {
    get ready() {
      return ready;
    },
    start() {
      if (!stopped) return;
      stopped = false;
      run();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
