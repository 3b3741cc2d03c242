// Status mapping of the JSON gateway, as Envoy does it: gRPC code → HTTP status
// (Envoy's Grpc::Utility::grpcToHttpStatus), and the gateway's own rejections ("local
// replies"), rendered exactly as envoy/envoy.yaml's local_reply_config renders Envoy's.
import { status as Code } from "@grpc/grpc-js";
import { clipUtf8, codeForReason, ERROR_DOMAIN, MAX_MESSAGE_BYTES, type Reason } from "../errors";

/** Envoy's table ("from cloud.google.com/apis/design/errors"); unknown codes are 500. */
export function httpStatusFromGrpc(code: Code): number {
  switch (code) {
    case Code.OK:
      return 200;
    case Code.CANCELLED:
      return 499;
    case Code.INVALID_ARGUMENT:
    case Code.FAILED_PRECONDITION:
    case Code.OUT_OF_RANGE:
      return 400;
    case Code.DEADLINE_EXCEEDED:
      return 504;
    case Code.NOT_FOUND:
      return 404;
    case Code.ALREADY_EXISTS:
    case Code.ABORTED:
      return 409;
    case Code.PERMISSION_DENIED:
      return 403;
    case Code.RESOURCE_EXHAUSTED:
      return 429;
    case Code.UNIMPLEMENTED:
      return 501;
    case Code.UNAVAILABLE:
      return 503;
    case Code.UNAUTHENTICATED:
      return 401;
    default:
      return 500; // UNKNOWN, INTERNAL, DATA_LOSS and anything else
  }
}

/**
 * The google.rpc.Status that a local reply of each HTTP status carries. Envoy's own replies are
 * plain text; envoy.yaml maps them to this JSON so REST clients always get one error shape.
 * test/envoy-config.test.ts checks that the two tables agree.
 */
export const LOCAL_REPLIES = {
  400: "invalid_argument",
  404: "not_found",
  408: "deadline_exceeded",
  413: "invalid_body_size",
  431: "invalid_header_size",
  500: "internal",
  502: "internal",
  503: "unavailable",
  504: "deadline_exceeded",
} as const satisfies Record<number, Reason>;

export type LocalReplyStatus = keyof typeof LOCAL_REPLIES;

/** A rejection by the gateway itself; `message` is Envoy's text for the same case. */
export class LocalReply extends Error {
  constructor(
    readonly status: LocalReplyStatus,
    message: string,
  ) {
    super(message);
    this.name = "LocalReply";
  }
}

/**
 * The JSON body of a local reply: google.rpc.Status with an ErrorInfo detail, whose metadata
 * carries the request id as a call's errors do (errors.ts statusDetails).
 */
export function localReplyBody(reply: LocalReply, requestId?: string): string {
  const reason = LOCAL_REPLIES[reply.status];
  const code = codeForReason(reason);
  const info = { "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason, domain: ERROR_DOMAIN, metadata: requestId ? { requestId } : {} };
  return JSON.stringify({ code, message: clipUtf8(reply.message, MAX_MESSAGE_BYTES), details: [info] });
}
