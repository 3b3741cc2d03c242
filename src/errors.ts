// The one error type handlers throw, the closed set of reasons a client can see (SPEC §4), the
// reason → gRPC code table, and the conversion to a grpc-js status carrying google.rpc.Status.
import { Metadata, status as Code, type StatusObject } from "@grpc/grpc-js";
import { BadRequest, ErrorInfo } from "../gen/google/rpc/error_details";
import { Status } from "../gen/google/rpc/status";

export const ERROR_DOMAIN = "qod.v1";

/**
 * Every reason a client can see, and nowhere else: SPEC §4's reasons, each `invalid_*` reason by
 * name (the rule that failed), and the ones a transport gives (cancelled, deadline, unknown method).
 */
export const REASONS = [
  // INVALID_ARGUMENT: which input was wrong.
  "invalid_allow_list",
  "invalid_argument",
  "invalid_auth_config",
  "invalid_auth_provider",
  "invalid_auth_query",
  "invalid_ban_reason",
  "invalid_body_size",
  "invalid_character",
  "invalid_credential",
  "invalid_current_password",
  "invalid_data_path",
  "invalid_default_database",
  "invalid_default_schema",
  "invalid_display_name",
  "invalid_expire_time",
  "invalid_header_size",
  "invalid_id",
  "invalid_id_token",
  "invalid_kind",
  "invalid_map_key",
  "invalid_metastore",
  "invalid_mode",
  "invalid_name",
  "invalid_object_store",
  "invalid_page_size",
  "invalid_page_token",
  "invalid_password",
  "invalid_request_id",
  "invalid_require_user",
  "invalid_role",
  "invalid_size",
  "invalid_tenant",
  "invalid_tenant_db",
  "invalid_upstream",
  "invalid_upstream_tls_ca",
  "invalid_username",
  // The rest of SPEC §4.
  "unauthenticated",
  "tenant_forbidden",
  "superuser_required",
  "admin_required",
  "not_found",
  "exists",
  "has_pools",
  "rate_limited",
  "quota_exceeded",
  "unavailable",
  // What transports and the server itself answer.
  "cancelled",
  "deadline_exceeded",
  "unimplemented",
  "internal",
] as const;

export type Reason = (typeof REASONS)[number];
/** The reasons of INVALID_ARGUMENT, each naming the rule that failed. */
export type InvalidReason = Extract<Reason, `invalid_${string}`>;

const KNOWN: ReadonlySet<string> = new Set(REASONS);

/** Whether a stored or received string is one of the reasons (for values read back from the state). */
export function isReason(value: string): value is Reason {
  return KNOWN.has(value);
}

/** The gRPC code of each reason. Exhaustive: a reason added to REASONS without a code does not compile. */
export function codeForReason(reason: Reason): Code {
  switch (reason) {
    case "invalid_allow_list":
    case "invalid_argument":
    case "invalid_auth_config":
    case "invalid_auth_provider":
    case "invalid_auth_query":
    case "invalid_ban_reason":
    case "invalid_body_size":
    case "invalid_character":
    case "invalid_credential":
    case "invalid_current_password":
    case "invalid_data_path":
    case "invalid_default_database":
    case "invalid_default_schema":
    case "invalid_display_name":
    case "invalid_expire_time":
    case "invalid_header_size":
    case "invalid_id":
    case "invalid_id_token":
    case "invalid_kind":
    case "invalid_map_key":
    case "invalid_metastore":
    case "invalid_mode":
    case "invalid_name":
    case "invalid_object_store":
    case "invalid_page_size":
    case "invalid_page_token":
    case "invalid_password":
    case "invalid_request_id":
    case "invalid_require_user":
    case "invalid_role":
    case "invalid_size":
    case "invalid_tenant":
    case "invalid_tenant_db":
    case "invalid_upstream":
    case "invalid_upstream_tls_ca":
    case "invalid_username":
      return Code.INVALID_ARGUMENT;
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
    case "internal":
      return Code.INTERNAL;
    default:
      return unreachable(reason);
  }
}

function unreachable(value: never): never {
  throw new TypeError(`no gRPC code for reason ${String(value)}`);
}

/** One bad field of a request: `field` is the proto field path (snake_case, as BadRequest wants). */
export interface FieldViolation {
  field: string;
  description: string;
  reason: InvalidReason;
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
  const shown = violations.slice(0, MAX_VIOLATIONS).map((v) => `${v.field}: ${v.description}`);
  const rest = violations.length - shown.length;
  const message = rest > 0 ? `${shown.join("; ")}; and ${moreViolations(rest)}` : shown.join("; ");
  return new AppError(first.reason, message, violations);
}

export const notFound = (what: string): AppError => new AppError("not_found", `${what} not found`);

/**
 * What a status may carry, so that its trailers always fit what HTTP/2 peers accept (a status
 * with 1000 field violations made trailers that grpc-js clients never received): at most
 * MAX_VIOLATIONS violations, each field and description cut to MAX_VIOLATION_TEXT characters,
 * then one violation saying how many more there were; a message of at most MAX_MESSAGE_BYTES.
 * Both transports build their statuses here (toServiceError), so the caps hold everywhere.
 */
export const MAX_VIOLATIONS = 20;
export const MAX_VIOLATION_TEXT = 200;
export const MAX_MESSAGE_BYTES = 1024;

const moreViolations = (count: number) => `${count} more violation${count === 1 ? "" : "s"} not shown`;

/** `text` cut to `maxChars` code points, marked with an ellipsis when cut. */
function clip(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  const chars = [...text];
  return chars.length <= maxChars ? text : `${chars.slice(0, maxChars - 1).join("")}…`;
}

/** `text` cut to at most `maxBytes` of UTF-8 (never inside a character), marked with an ellipsis when cut. */
export function clipUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text) <= maxBytes) return text;
  const budget = maxBytes - Buffer.byteLength("…");
  let bytes = 0;
  let out = "";
  for (const char of text) {
    bytes += Buffer.byteLength(char);
    if (bytes > budget) break;
    out += char;
  }
  return `${out}…`;
}

/** The field violations a status carries: capped in number and length, with a count of the rest. */
function shownViolations(violations: readonly FieldViolation[]): { field: string; description: string }[] {
  const shown = violations.slice(0, MAX_VIOLATIONS).map((v) => ({ field: clip(v.field, MAX_VIOLATION_TEXT), description: clip(v.description, MAX_VIOLATION_TEXT) }));
  const rest = violations.length - shown.length;
  if (rest > 0) shown.push({ field: "", description: moreViolations(rest) });
  return shown;
}

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
    details.push({
      typeUrl: "type.googleapis.com/google.rpc.BadRequest",
      value: Buffer.from(BadRequest.encode({ fieldViolations: shownViolations(err.violations) }).finish()),
    });
  }
  return Buffer.from(Status.encode({ code: err.code, message: clipUtf8(err.message, MAX_MESSAGE_BYTES), details }).finish());
}

/** The status grpc-js sends for an AppError: code, message and `grpc-status-details-bin`. */
export function toServiceError(err: AppError, requestId?: string): StatusObject {
  const metadata = new Metadata();
  metadata.set("grpc-status-details-bin", statusDetails(err, requestId));
  return { code: err.code, details: clipUtf8(err.message, MAX_MESSAGE_BYTES), metadata };
}
