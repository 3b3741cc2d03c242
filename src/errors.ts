// The one error type handlers throw, the reason → gRPC code table (SPEC §4), and the
// conversion to a grpc-js status carrying google.rpc.Status details.
import { Metadata, status as Code, type StatusObject } from "@grpc/grpc-js";
import { BadRequest, ErrorInfo } from "../gen/google/rpc/error_details";
import { Status } from "../gen/google/rpc/status";

export const ERROR_DOMAIN = "qod.v1";

/** Every reason a client can see. `invalid_*` reasons name the rule that failed. */
export type Reason =
  | `invalid_${string}`
  | "unauthenticated"
  | "tenant_forbidden"
  | "superuser_required"
  | "admin_required"
  | "not_found"
  | "exists"
  | "has_pools"
  | "rate_limited"
  | "quota_exceeded"
  | "unavailable"
  | "cancelled"
  | "deadline_exceeded"
  | "unimplemented"
  | "internal";

export function codeForReason(reason: Reason): Code {
  if (reason.startsWith("invalid_")) return Code.INVALID_ARGUMENT;
  switch (reason) {
    case "unauthenticated":
      return Code.UNAUTHENTICATED;
    case "tenant_forbidden":
    case "superuser_required":
    case "admin_required":
      return Code.PERMISSION_DENIED;
    case "not_found":
      return Code.NOT_FOUND;
    case "exists":
      return Code.ALREADY_EXISTS;
    case "has_pools":
      return Code.ABORTED;
    case "rate_limited":
    case "quota_exceeded":
      return Code.RESOURCE_EXHAUSTED;
    case "unavailable":
      return Code.UNAVAILABLE;
    case "cancelled":
      return Code.CANCELLED;
    case "deadline_exceeded":
      return Code.DEADLINE_EXCEEDED;
    case "unimplemented":
      return Code.UNIMPLEMENTED;
    default:
      return Code.INTERNAL;
  }
}

/** One bad field of a request: `field` is the proto field path (snake_case, as BadRequest wants). */
export interface FieldViolation {
  field: string;
  description: string;
  reason: `invalid_${string}`;
}

/**
 * An error whose message is safe to show a client. `cause` is kept for logs and never sent.
 * Messages never hold SQL, a stack, a password or a secret.
 */
export class AppError extends Error {
  readonly code: Code;

  constructor(
    readonly reason: Reason,
    message: string,
    readonly violations: readonly FieldViolation[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "AppError";
    this.code = codeForReason(reason);
  }
}

/** INVALID_ARGUMENT for one or more field violations; the first violation's reason is the error's. */
export function invalid(violations: FieldViolation[]): AppError {
  const [first] = violations;
  if (!first) throw new TypeError("invalid() needs at least one violation");
  const message = violations.map((v) => `${v.field}: ${v.description}`).join("; ");
  return new AppError(first.reason, message, violations);
}

export const notFound = (what: string): AppError => new AppError("not_found", `${what} not found`);

/** Encodes `google.rpc.Status` with ErrorInfo (and BadRequest for violations). */
export function statusDetails(err: AppError, requestId?: string): Buffer {
  const metadata: Record<string, string> = requestId ? { requestId } : {};
  const details = [
    {
      typeUrl: "type.googleapis.com/google.rpc.ErrorInfo",
      value: Buffer.from(ErrorInfo.encode({ reason: err.reason, domain: ERROR_DOMAIN, metadata }).finish()),
    },
  ];
  if (err.violations.length > 0) {
    const fieldViolations = err.violations.map((v) => ({ field: v.field, description: v.description }));
    details.push({
      typeUrl: "type.googleapis.com/google.rpc.BadRequest",
      value: Buffer.from(BadRequest.encode({ fieldViolations }).finish()),
    });
  }
  return Buffer.from(Status.encode({ code: err.code, message: err.message, details }).finish());
}

/** The status grpc-js sends for an AppError: code, message and `grpc-status-details-bin`. */
export function toServiceError(err: AppError, requestId?: string): StatusObject {
  const metadata = new Metadata();
  metadata.set("grpc-status-details-bin", statusDetails(err, requestId));
  return { code: err.code, details: err.message, metadata };
}
