// Keeps one connection LISTENing on a Postgres channel, and reconnects when it drops. LISTEN
// needs a session of its own for as long as it listens, so it never uses a pooled connection.
import { Client } from "pg";
import type { Logger } from "pino";

export interface ListenHandlers {
  /** A notification's payload, in commit order of the transactions that sent them. */
  notify(payload: string): void;
  /** Listening (again): notifications from here on arrive; any sent while not listening were lost. */
  listening(): void;
  /** The connection dropped: notifications may be lost until `listening` is called again. */
  lost(): void;
}

export interface Listener {
  close(): Promise<void>;
}

const RETRY_FIRST_MS = 250;
const RETRY_MAX_MS = 10_000;
/**
 * A listening connection only reads, so one that died without a reset (a partition, a crashed
 * host, a NAT that forgot the flow) would go unnoticed and its notices be lost: it is probed
 * `everyMs`, and dropped when a probe gets no answer within `timeoutMs`.
 */
export const PROBE = { everyMs: 10_000, timeoutMs: 5_000 };

export function listen(url: string, channel: string, logger: Logger, handlers: ListenHandlers, probeEvery = PROBE): Listener {
  const log = logger.child({ component: "listener", channel });
  let current: Client | undefined;
  let closed = false;
  let retryMs = RETRY_FIRST_MS;
  let retryTimer: NodeJS.Timeout | undefined;

  const connect = async () => {
    retryTimer = undefined;
    const client = new Client({ connectionString: url, application_name: "qod listener", keepAlive: true, keepAliveInitialDelayMillis: probeEvery.everyMs });
    let dropped = false;
    // Set once connected; `drop` may run before that.
    let probe: NodeJS.Timeout | undefined = undefined;
    const drop = (err?: Error) => {
      if (dropped) return;
      dropped = true;
      clearInterval(probe);
      if (current === client) {
        current = undefined;
        handlers.lost();
      }
      client.end().catch(() => {});
      if (closed) return;
      log.warn({ err: err && { name: err.name, message: err.message }, retryMs }, "lost the notification connection; reconnecting");
      retryTimer = setTimeout(() => void connect(), retryMs);
      retryTimer.unref();
      retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
    };
    client.on("notification", (message) => {
      if (message.channel === channel) handlers.notify(message.payload ?? "");
    });
    client.on("error", drop);
    client.on("end", () => drop());
    try {
      await client.connect();
      await client.query(`LISTEN ${client.escapeIdentifier(channel)}`);
    } catch (err) {
      drop(err as Error);
      return;
    }
    if (closed || dropped) return void client.end().catch(() => {});
    current = client;
    retryMs = RETRY_FIRST_MS;
    probe = setInterval(() => {
      const timeout = setTimeout(() => drop(new Error("the probe got no answer")), probeEvery.timeoutMs);
      timeout.unref();
      client.query("SELECT 1").then(
        () => clearTimeout(timeout),
        (err: Error) => {
          clearTimeout(timeout);
          drop(err);
        },
      );
    }, probeEvery.everyMs);
    probe.unref();
    handlers.listening();
  };

  void connect();
  return {
    async close() {
      closed = true;
      if (retryTimer) clearTimeout(retryTimer);
      const client = current;
      current = undefined;
      await client?.end().catch(() => {});
    },
  };
}

/** One LISTEN connection shared by several subscribers of a channel (the tenant cache, the data plane). */
export interface NotificationFeed {
  /**
   * Adds a subscriber (the connection opens with the first one). A subscriber added while the
   * connection listens is told `listening` at once. Returns what removes it.
   */
  subscribe(handlers: ListenHandlers): () => void;
  close(): Promise<void>;
}

export function createNotificationFeed(url: string, channel: string, logger: Logger, probeEvery = PROBE): NotificationFeed {
  const subscribers = new Set<ListenHandlers>();
  let listener: Listener | undefined;
  let listening = false;
  const each = (tell: (handlers: ListenHandlers) => void) => {
    for (const handlers of [...subscribers]) tell(handlers);
  };
  return {
    subscribe(handlers) {
      subscribers.add(handlers);
      listener ??= listen(url, channel, logger, {
        notify: (payload) => each((s) => s.notify(payload)),
        listening: () => {
          listening = true;
          each((s) => s.listening());
        },
        lost: () => {
          listening = false;
          each((s) => s.lost());
        },
      }, probeEvery);
      if (listening) handlers.listening();
      return () => void subscribers.delete(handlers);
    },
    async close() {
      subscribers.clear();
      listening = false;
      const closing = listener;
      listener = undefined;
      await closing?.close();
    },
  };
}
