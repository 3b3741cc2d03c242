// JSON logs (pino), one object per line with an ISO-8601 `time`. Known secret-bearing keys are
// redacted wherever they appear.
import pino, { type Logger } from "pino";

// `values` and `row` are what slonik errors carry of a failed query: bound parameters (a
// password hash, a token hash) and a row that failed its schema.
const SECRET_KEYS = ["password", "newPassword", "currentPassword", "token", "idToken", "pgPassword", "authorization", "x-api-key", "secret", "values", "row"];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
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
