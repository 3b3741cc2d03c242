// Whether the ports the service is told to listen on are free, checked before anything starts, so
// a port in use stops the start with the variable's name instead of failing half-way.
import { createServer } from "node:net";

export interface Listening {
  /** The variable that sets the port, e.g. QOD_GRPC_PORT. */
  variable: string;
  host: string;
  port: number;
}

function free({ host, port }: Listening): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve(false));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve(true)));
  });
}

/** The messages of the ports in use, e.g. `QOD_GRPC_PORT=50051 is in use on 127.0.0.1`; port 0 picks a free one. */
export async function portsInUse(listening: readonly Listening[]): Promise<string[]> {
  const checks = await Promise.all(listening.filter((l) => l.port !== 0).map(async (l) => ((await free(l)) ? undefined : `${l.variable}=${l.port} is in use on ${l.host}`)));
  return checks.filter((message) => message !== undefined);
}
