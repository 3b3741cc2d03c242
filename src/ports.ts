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

const WILDCARDS = new Set(["0.0.0.0", "::", ""]);
const overlap = (a: Listening, b: Listening) => a.port === b.port && (a.host === b.host || WILDCARDS.has(a.host) || WILDCARDS.has(b.host));

/**
 * The messages of the ports in use, e.g. `QOD_GRPC_PORT=50051 is in use on 127.0.0.1`, or given
 * to two listeners; port 0 picks a free one.
 */
export async function portsInUse(listening: readonly Listening[]): Promise<string[]> {
  const fixed = listening.filter((l) => l.port !== 0);
  const twice = fixed.flatMap((l, i) => fixed.slice(0, i).filter((earlier) => overlap(earlier, l)).map((earlier) => `${l.variable}=${l.port} is also ${earlier.variable}`));
  if (twice.length > 0) return twice;
  const checks = await Promise.all(fixed.map(async (l) => ((await free(l)) ? undefined : `${l.variable}=${l.port} is in use on ${l.host}`)));
  return checks.filter((message) => message !== undefined);
}
