// In-process calls: the JSON gateway hands a method its request's bytes and gets back what a
// gRPC client would receive, through the same chain, decoding and encoding as a gRPC call,
// without a second hop through a socket.
import type { Metadata, ServiceDefinition, StatusObject } from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { Handler } from "../call/context";
import { metadataValue } from "../call/metadata";
import { AppError, toServiceError } from "../errors";
import type { CallInput } from "./call-state";
import { serveCall } from "./serve";

export type { CallInput } from "./call-state";

/**
 * What a gRPC client of the call receives: the response headers (`x-request-id`), then the
 * serialised response or the status that toServiceError builds.
 */
export type CallOutcome =
  | { readonly headers: Metadata; readonly response: Buffer; readonly error?: undefined }
  | { readonly headers: Metadata; readonly response?: undefined; readonly error: StatusObject };

/** Calls one method in-process: its request's bytes in, what a gRPC client would receive out. */
export type Invoker = (request: Uint8Array, call: CallInput) => Promise<CallOutcome>;

/** The invoker of one method; `method` is its entry of the (call-)definition. */
export function invoker(handler: Handler, method: ServiceDefinition[string], log: Logger): Invoker {
  const { path, requestDeserialize, responseSerialize } = method;
  return (bytes, call) => {
    const request = requestDeserialize(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)) as unknown;
    return new Promise((resolve) => {
      let headers!: Metadata; // sendHeaders runs right before settle
      serveCall(handler, path, log, request, call, (sent) => (headers = sent), (error, response) => {
        if (error) return resolve({ headers, error });
        try {
          resolve({ headers, response: responseSerialize(response) });
        } catch (err) {
          // A response ts-proto cannot encode: INTERNAL, as grpc-js answers it (without its text).
          log.error({ err, method: path }, "the response could not be encoded");
          resolve({ headers, error: toServiceError(new AppError("internal", "internal error"), metadataValue(headers, "x-request-id")) });
        }
      });
    });
  };
}
