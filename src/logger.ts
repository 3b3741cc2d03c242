// JSON logs (pino). Known secret-bearing keys are redacted wherever they appear.
import pino, { type Logger } from "pino";

const SECRET_KEYS = ["password", "newPassword", "currentPassword", "token", "idToken", "pgPassword", "authorization", "x-api-key", "secret"];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "qod" },
      redact: { paths: [...SECRET_KEYS, ...SECRET_KEYS.map((k) => `*.${k}`)], censor: "[redacted]" },
      serializers: { err: pino.stdSerializers.err },
    },
    destination,
  );
}
