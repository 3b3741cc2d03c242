// The service definition both transports decode and encode with.
import type { ServiceDefinition } from "@grpc/grpc-js";
import { isSharedResponse } from "../call/shared-response";
import { AppError, invalid } from "../errors";
import type { RequestScreen } from "./request-screen";

/** Stands in for a request that is refused before it is decoded; the handler chain throws `error`. */
export class RejectedRequest {
  constructor(readonly error: AppError) {}
}

const malformed = () => new RejectedRequest(new AppError("invalid_argument", "the request is not a valid protobuf message"));

/**
 * grpc-js answers INTERNAL when deserialising fails; a client's bad bytes are its own error, so
 * the failure is carried to the handler chain (as a RejectedRequest) and answered
 * INVALID_ARGUMENT there. Before decoding, the bytes pass the method's screen
 * (request-screen.ts). A shared response (call/shared-response.ts: frozen, returned by many
 * calls) is encoded once per method and its bytes reused.
 */
export function callDefinition(definition: ServiceDefinition, screenOf: (path: string) => RequestScreen): ServiceDefinition {
  return Object.fromEntries(
    Object.entries(definition).map(([key, method]) => {
      const encoded = new WeakMap<object, Buffer>();
      const screen = screenOf(method.path);
      return [
        key,
        {
          ...method,
          requestDeserialize: (bytes: Buffer) => {
            try {
              const violations = screen(bytes);
              if (violations.length > 0) return new RejectedRequest(invalid(violations));
              return method.requestDeserialize(bytes) as unknown;
            } catch {
              return malformed();
            }
          },
          responseSerialize: (value: object) => {
            if (!isSharedResponse(value)) return method.responseSerialize(value);
            let bytes = encoded.get(value);
            if (!bytes) encoded.set(value, (bytes = method.responseSerialize(value)));
            return bytes;
          },
        },
      ];
    }),
  );
}
