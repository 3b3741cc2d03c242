// gRPC calls with the request as raw bytes: for what the generated clients cannot send (bytes
// that are no valid message, map keys their encoders drop) and for the fuzzer.
import { fromJson, toBinary, type JsonValue } from "@bufbuild/protobuf";
import { Client, credentials, Metadata, status, type CallOptions, type ServiceError } from "@grpc/grpc-js";
import { loadRegistry } from "../../src/gateway/transcode";
import { readDescriptor } from "../../src/server/reflection";
import { metadataFor, type CallOptions as AuthOptions } from "./clients";

export const registry = loadRegistry(readDescriptor());

export interface RawOutcome {
  code: status;
  details: string;
  /** The trailers (grpc-status-details-bin among them); empty on success. */
  metadata: Metadata;
  response?: Buffer;
}

const identity = (b: Buffer) => b;

/** One client per address, for raw calls to any method. */
export function rawClient(address: string): { call(path: string, bytes: Uint8Array, auth?: AuthOptions, options?: CallOptions & { deadlineMs?: number }): Promise<RawOutcome>; close(): void } {
  const client = new Client(address, credentials.createInsecure());
  return {
    call(path, bytes, auth, options = {}) {
      const { deadlineMs = 30_000, ...callOptions } = options;
      return new Promise((resolve) => {
        client.makeUnaryRequest(path, identity, identity, Buffer.from(bytes), metadataFor(auth), { deadline: Date.now() + deadlineMs, ...callOptions }, (err: ServiceError | null, response?: Buffer) =>
          resolve(err ? { code: err.code, details: err.details, metadata: err.metadata ?? new Metadata() } : { code: status.OK, details: "", metadata: new Metadata(), response }),
        );
      });
    },
    close: () => client.close(),
  };
}

/** The binary request of `method` (`qod.v1.TenantService/CreateTenant`) from its proto3 JSON, map keys kept as given. */
export function requestBytes(method: string, json: JsonValue): Uint8Array {
  const [service, name] = method.split("/");
  const described = registry.getService(service ?? "")?.methods.find((m) => m.name === name);
  if (!described) throw new Error(`no method ${method}`);
  return toBinary(described.input, fromJson(described.input, json, { registry }));
}
