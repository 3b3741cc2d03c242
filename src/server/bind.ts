// Builds a service from plain async handlers behind the middleware chain: the grpc-js
// definition and implementation, and an in-process invoker per method for the JSON gateway.
// Handlers are typed from the ts-proto service definition (call/context.ts ServiceHandlers).
import type { ServiceDefinition, UntypedServiceImplementation } from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { Handler } from "../call/context";
import { callDefinition, RejectedRequest } from "./call-definition";
import { grpcUnary } from "./grpc-adapter";
import { invoker, type Invoker } from "./invoker";
import type { RequestScreen } from "./request-screen";

type RequestOf<M> = M extends { requestDeserialize: (bytes: Buffer) => infer R } ? R : never;
type ResponseOf<M> = M extends { responseSerialize: (value: infer R) => Buffer } ? R : never;

export interface BoundService {
  /** The grpc-js definition and implementation, for Server.addService. */
  definition: ServiceDefinition;
  implementation: UntypedServiceImplementation;
  /** By method path (`/qod.v1.TenantService/GetTenant`): the same handler, called in-process. */
  invokers: ReadonlyMap<string, Invoker>;
}

export function bindService<D extends ServiceDefinition>(
  definition: D,
  handlers: { [K in keyof D]: (request: RequestOf<D[K]>, ctx: never) => Promise<ResponseOf<D[K]>> },
  wrap: (handler: Handler) => Handler,
  log: Logger,
  screenOf: (path: string) => RequestScreen,
): BoundService {
  const served = callDefinition(definition, screenOf);
  const implementation: UntypedServiceImplementation = {};
  const invokers = new Map<string, Invoker>();
  for (const key of Object.keys(definition) as (keyof D & string)[]) {
    const method = served[key];
    const typed = handlers[key] as unknown as Handler;
    const handler = wrap(async (request, ctx) => {
      // Refused at decoding (call-definition.ts): answered inside the chain, so it is logged and
      // authenticated like any other call.
      if (request instanceof RejectedRequest) throw request.error;
      return typed(request, ctx);
    });
    implementation[key] = grpcUnary(handler, method.path, log);
    invokers.set(method.path, invoker(handler, method, log));
  }
  return { definition: served, implementation, invokers };
}
