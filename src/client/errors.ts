// Reading a failed call's google.rpc.Status from `grpc-status-details-bin` (SPEC §4): the
// ErrorInfo reason (`not_found`, `has_pools`, `invalid_name`, …) and BadRequest field violations.
import { status as GrpcStatus, type ServiceError } from "@grpc/grpc-js";
import { BadRequest, ErrorInfo } from "../../gen/google/rpc/error_details";
import { Status } from "../../gen/google/rpc/status";

const ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo";
const BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest";

export interface FieldViolation {
  /** The request field's path, with proto (snake_case) names. */
  field: string;
  description: string;
}

export interface ErrorDetails {
  /** The gRPC status code. */
  code: GrpcStatus;
  message: string;
  /** ErrorInfo's reason; for a status without one (e.g. a connection failure), the code's name in lower case. */
  reason: string;
  /** ErrorInfo's domain (`qod.v1`), or "" without an ErrorInfo. */
  domain: string;
  /** ErrorInfo's metadata (e.g. `requestId`). */
  metadata: Record<string, string>;
  fieldViolations: FieldViolation[];
}

function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === "number" && "metadata" in err;
}

function decodeStatus(err: ServiceError): Status | undefined {
  const [bytes] = err.metadata?.get("grpc-status-details-bin") ?? [];
  if (!Buffer.isBuffer(bytes)) return undefined;
  try {
    return Status.decode(bytes);
  } catch {
    return undefined; // undecodable details: the call's code and message still stand
  }
}

function decodeDetail<T>(status: Status | undefined, typeUrl: string, decode: (bytes: Uint8Array) => T): T | undefined {
  const any = status?.details.find((detail) => detail.typeUrl === typeUrl);
  if (!any) return undefined;
  try {
    return decode(any.value);
  } catch {
    return undefined;
  }
}

/** The ErrorInfo a failed call carries (reason, domain, metadata), or undefined (not a gRPC error, or none sent). */
export function errorInfo(err: unknown): ErrorInfo | undefined {
  if (!isServiceError(err)) return undefined;
  return decodeDetail(decodeStatus(err), ERROR_INFO_TYPE, (bytes) => ErrorInfo.decode(bytes));
}

/** Everything a failed call says about itself; undefined when `err` is not a gRPC ServiceError. */
export function errorDetails(err: unknown): ErrorDetails | undefined {
  if (!isServiceError(err)) return undefined;
  const status = decodeStatus(err);
  const info = decodeDetail(status, ERROR_INFO_TYPE, (bytes) => ErrorInfo.decode(bytes));
  const badRequest = decodeDetail(status, BAD_REQUEST_TYPE, (bytes) => BadRequest.decode(bytes));
  return {
    code: err.code,
    message: err.details,
    reason: info?.reason || (GrpcStatus[err.code] ?? "unknown").toLowerCase(),
    domain: info?.domain ?? "",
    metadata: info?.metadata ?? {},
    fieldViolations: (badRequest?.fieldViolations ?? []).map(({ field, description }) => ({ field, description })),
  };
}
