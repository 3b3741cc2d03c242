// JSON logs (pino), one object per line with an ISO-8601 `time`. Known secret-bearing keys are
// redacted wherever they appear.
import pino, { type Logger } from "pino";

/** What stdout may hold back when it does not drain (a stalled pipe); lines beyond are dropped, not kept in memory. */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

// `values` and `row` are what slonik errors carry of a failed query: bound parameters (a
// password hash, a token hash) and a row that failed its schema.
const SECRET_KEYS = ["password", "newPassword", "currentPassword", "token", "idToken", "pgPassword", "authorization", "x-api-key", "secret", "values", "row"];

/**
 * `destination` defaults to stdout written asynchronously: a line is handed to the kernel at once
 * when stdout is idle, and lines logged while a write is in flight go together in the next one,
 * so a busy service does not make one write system call per call it logs. pino writes what is
 * still buffered when the process exits (not when it is killed with SIGKILL).
 */
export function createLogger(level: string, destination: pino.DestinationStream = pino.destination({ dest: 1, sync: false, maxLength: MAX_BUFFERED_BYTES })): Logger {
  return pino(
    {
      level,
      base: { service: "qod" },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: [...SECRET_KEYS, ...SECRET_KEYS.map((k) => `*.${k}`)], censor: "[redacted]" },
      serializers: { err: pino.stdSerializers.err },
    },
    destination,
  );
}
