// qodctl's exit status: one per class of failure, so scripts can tell "not there" from "not
// allowed" from "try again later" without parsing messages.
import { status as Code } from "@grpc/grpc-js";

export const EXIT = {
  OK: 0,
  OTHER: 1,
  USAGE: 2,
  NOT_FOUND: 3,
  CONFLICT: 4,
  DENIED: 5,
  UNAVAILABLE: 6,
  INVALID: 7,
  EXHAUSTED: 8,
} as const;

/** The exit status of a call that failed with this gRPC code. */
export function exitCodeForStatus(code: Code): number {
  switch (code) {
    case Code.NOT_FOUND:
      return EXIT.NOT_FOUND;
    case Code.ALREADY_EXISTS:
    case Code.ABORTED:
    case Code.FAILED_PRECONDITION:
      return EXIT.CONFLICT;
    case Code.UNAUTHENTICATED:
    case Code.PERMISSION_DENIED:
      return EXIT.DENIED;
    case Code.UNAVAILABLE:
    case Code.DEADLINE_EXCEEDED:
      return EXIT.UNAVAILABLE;
    case Code.INVALID_ARGUMENT:
    case Code.OUT_OF_RANGE:
      return EXIT.INVALID;
    case Code.RESOURCE_EXHAUSTED:
      return EXIT.EXHAUSTED;
    default:
      return EXIT.OTHER;
  }
}

/** The table `qodctl --help` and docs/qodctl.md show. */
export const EXIT_CODES_HELP = `Exit codes:
  0  success
  1  any other failure (internal, unimplemented, cancelled)
  2  usage: unknown command or flag, bad flag value, unreadable -f file
  3  not found (not_found)
  4  conflict: already exists (exists), still in use (has_pools)
  5  unauthenticated or forbidden (unauthenticated, tenant_forbidden,
     superuser_required, admin_required)
  6  server unavailable or deadline exceeded: retrying may help
  7  invalid argument (invalid_*)
  8  rate limited or over quota (rate_limited, quota_exceeded)`;
