// grpc-js's callback API in front of a plain async handler (after nice-grpc's handleUnaryCall).
import type { ServerUnaryCall, sendUnaryData } from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { Handler } from "../call/context";
import type { CallInput } from "./call-state";
import { serveCall } from "./serve";

function grpcCallInput(call: ServerUnaryCall<unknown, unknown>): CallInput {
  const raw = call.getDeadline();
  return {
    surface: "grpc",
    metadata: call.metadata,
    peer: call.getPeer(),
    deadline: raw instanceof Date ? raw.getTime() : Number.isFinite(raw) ? Number(raw) : undefined,
    onCancel(listener) {
      call.once("cancelled", listener);
      return () => call.removeListener("cancelled", listener);
    },
  };
}

/** The grpc-js implementation of one method. */
export function grpcUnary(handler: Handler, path: string, log: Logger) {
  return (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>): void =>
    serveCall(handler, path, log, call.request, grpcCallInput(call), (headers) => call.sendMetadata(headers), callback);
}
