// The service definition both transports decode and encode with.
import type { ServiceDefinition } from "@grpc/grpc-js";
import { isSharedResponse } from "../call/shared-response";

/** Stands in for a request whose bytes are not a valid message. */
export const MALFORMED = Symbol("malformed request");

/**
 * grpc-js answers INTERNAL when deserialising fails; a client's bad bytes are its own error, so
 * the failure is carried to the handler chain (as MALFORMED) and answered INVALID_ARGUMENT there.
 * A shared response (call/shared-response.ts: frozen, returned by many calls) is encoded once per
 * method and its bytes reused.
 */
export function callDefinition(definition: ServiceDefinition): ServiceDefinition {
  return Object.fromEntries(
    Object.entries(definition).map(([key, method]) => {
      const encoded = new WeakMap<object, Buffer>();
      return [
        key,
        {
          ...method,
          requestDeserialize: (bytes: Buffer) => {
            try {
              return method.requestDeserialize(bytes) as unknown;
            } catch {
              return MALFORMED;
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
