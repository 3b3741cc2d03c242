// grpc-js answers some calls itself, before any handler runs, and without our details: a
// malformed `grpc-timeout` header and a `grpc-encoding: gzip` body that does not decompress
// come back INTERNAL, a message over the size limit RESOURCE_EXHAUSTED, a deadline that passes
// DEADLINE_EXCEEDED. The first three are the client's own errors (INVALID_ARGUMENT, as the JSON
// listener answers a bad body), and every status should carry a reason of the closed list.
//
// grpc-js sends these from the call object its server interceptors wrap (its base call), not
// through the interceptors, so the one place to see them is that object's sendStatus: this
// interceptor, the only one, wraps it. Statuses our handlers send (with their details) pass
// through unchanged.
import { ServerInterceptingCall, status as Code, type ServerInterceptor, type StatusObject } from "@grpc/grpc-js";
import { AppError, toServiceError, type Reason } from "../errors";

type PartialStatus = Parameters<ServerInterceptingCall["sendStatus"]>[0];

/** grpc-js's own statuses for a client's malformed request, by the start of its message. */
const CLIENT_FAULTS: readonly [RegExp, Reason, string][] = [
  [/^Invalid grpc-timeout value/, "invalid_argument", "the grpc-timeout header is malformed"],
  [/^Failed to decompress message/, "invalid_argument", "the request message could not be decompressed"],
  [/^Received message (?:larger than max|that decompresses to a size larger than)/, "invalid_body_size", "the request message is larger than the server accepts"],
];

/** The reason of a status grpc-js made, by its code, when the closed list has one. */
const REASON_OF_CODE: Partial<Record<Code, Reason>> = {
  [Code.CANCELLED]: "cancelled",
  [Code.DEADLINE_EXCEEDED]: "deadline_exceeded",
  [Code.UNIMPLEMENTED]: "unimplemented",
  [Code.INTERNAL]: "internal",
  [Code.UNAVAILABLE]: "unavailable",
};

/** A status of grpc-js's own (it has no details of ours) as a client should see it; others as they are. */
export function transportStatus(sent: PartialStatus): PartialStatus {
  if (sent.code === Code.OK || sent.metadata?.get("grpc-status-details-bin").length) return sent;
  const fault = CLIENT_FAULTS.find(([pattern]) => pattern.test(sent.details ?? ""));
  if (fault) return toServiceError(new AppError(fault[1], fault[2]));
  const reason = REASON_OF_CODE[sent.code];
  if (!reason) return sent;
  const withDetails: StatusObject = toServiceError(new AppError(reason, sent.details ?? ""));
  return { ...withDetails, code: sent.code };
}

export const transportStatusInterceptor: ServerInterceptor = (_method, call) => {
  const send = call.sendStatus.bind(call);
  call.sendStatus = (sent) => send(transportStatus(sent));
  return new ServerInterceptingCall(call);
};
