// The status a failed call answers, as the logging and metrics middleware report it. They run
// outside the errors middleware, which turns every failure into an AppError; anything else would
// be answered INTERNAL (server/serve.ts), so it is reported so.
import { status } from "@grpc/grpc-js";
import { AppError, type Reason } from "../../errors";

export interface FailedOutcome {
  /** The gRPC status code's name (`NOT_FOUND`), as go-grpc-prometheus labels it. */
  code: string;
  reason: Reason;
}

export function failedOutcome(err: unknown): FailedOutcome {
  if (err instanceof AppError) return { code: status[err.code], reason: err.reason };
  return { code: status[status.INTERNAL], reason: "internal" };
}
