// Builds the grpc-js server: our services behind the middleware chain, plus health and reflection.
import { Server, ServerCredentials, type ServiceDefinition, type UntypedServiceImplementation } from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import { addReflection } from "./reflection";
import { transportStatusInterceptor } from "./transport-status";

export interface GrpcService {
  name: string;
  definition: ServiceDefinition;
  implementation: UntypedServiceImplementation;
}

/** Limits and keepalive: clients idle for long are pinged, dead peers dropped, big messages refused. */
export const GRPC_SERVER_OPTIONS = {
  "grpc.max_receive_message_length": 4 * 1024 * 1024,
  "grpc.max_send_message_length": 16 * 1024 * 1024,
  "grpc.keepalive_time_ms": 60_000,
  "grpc.keepalive_timeout_ms": 20_000,
  "grpc.keepalive_permit_without_calls": 1,
  "grpc.http2.min_ping_interval_without_data_ms": 10_000,
  "grpc.max_connection_idle_ms": 15 * 60_000,
  "grpc.max_concurrent_streams": 1000,
} as const;

export interface GrpcServer {
  server: Server;
  health: HealthImplementation;
  listen(host: string, port: number): Promise<number>;
  setServing(serving: boolean): void;
  /** Stops accepting calls and lets those in flight finish; after graceMs they are cancelled. */
  shutdown(graceMs: number): Promise<void>;
}

export function createGrpcServer(services: readonly GrpcService[], descriptor: Uint8Array): GrpcServer {
  const server = new Server({ ...GRPC_SERVER_OPTIONS, interceptors: [transportStatusInterceptor] });
  for (const service of services) server.addService(service.definition, service.implementation);
  const names = ["", ...services.map((s) => s.name)];
  const health = new HealthImplementation(Object.fromEntries(names.map((n) => [n, "SERVING" as const])));
  health.addToServer(server);
  addReflection(server, descriptor);
  return {
    server,
    health,
    listen: (host, port) =>
      new Promise((resolve, reject) => {
        const address = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
        server.bindAsync(address, ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound)));
      }),
    setServing(serving) {
      for (const name of names) health.setStatus(name, serving ? "SERVING" : "NOT_SERVING");
    },
    shutdown: (graceMs) =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        force.unref();
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}
