// A real grpc-js client for the bench's own checks: one verification call before each load run
// (h2load would count a gRPC error as a success), readiness, and fetching response bytes.
import { Client, credentials, Metadata, status, type ServiceError } from "@grpc/grpc-js";

export interface RawResult {
  code: status;
  details: string;
  /** The response message bytes (empty on error). */
  bytes: Buffer;
}

const identity = (b: Buffer) => b;

export class RawClient {
  private readonly client: Client;

  constructor(address: string, private readonly headers: Record<string, string> = {}) {
    this.client = new Client(address, credentials.createInsecure());
  }

  call(path: string, request: Uint8Array, deadlineMs = 60_000): Promise<RawResult> {
    const md = new Metadata();
    for (const [k, v] of Object.entries(this.headers)) md.set(k, v);
    return new Promise((resolve) => {
      this.client.makeUnaryRequest(path, identity, identity, Buffer.from(request), md, { deadline: Date.now() + deadlineMs }, (err: ServiceError | null, res?: Buffer) =>
        resolve(err ? { code: err.code, details: err.details, bytes: Buffer.alloc(0) } : { code: status.OK, details: "", bytes: res ?? Buffer.alloc(0) }),
      );
    });
  }

  close(): void {
    this.client.close();
  }
}

/** grpc.health.v1.Health/Check answered SERVING (the response is field 1 = 1). */
export async function healthy(address: string): Promise<boolean> {
  const client = new RawClient(address);
  try {
    const res = await client.call("/grpc.health.v1.Health/Check", new Uint8Array(), 2_000);
    return res.code === status.OK && res.bytes.equals(Buffer.from([0x08, 0x01]));
  } finally {
    client.close();
  }
}

export const codeName = (code: number): string => status[code] ?? String(code);
