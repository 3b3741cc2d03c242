// The JSON /api listener: Envoy's gRPC-JSON transcoder, in-process. A request is routed by the
// google.api.http rules, transcoded, and sent as a gRPC call to our own gRPC port over one
// long-lived channel, so it passes the same middleware chain as any gRPC client's call.
import { createServer, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Client, credentials, Metadata, status as Code, type ServiceError } from "@grpc/grpc-js";
import type { Logger } from "pino";
import { GRPC_SERVER_OPTIONS } from "../server/grpc";
import { httpStatusFromGrpc, LocalReply, localReplyBody } from "./http-status";
import { buildRoutes, gatewayServices, type Route } from "./routes";
import { createTranscoder, loadRegistry } from "./transcode";

/** Deadline of every call: room for provisioning. envoy.yaml's route timeout is the same. */
export const GATEWAY_DEADLINE_MS = 120_000;

/** Idle keep-alive connections are kept this long (longer than common client pools' idle time). */
const KEEP_ALIVE_MS = 65_000;

// Hop-by-hop and HTTP/2-reserved request headers, and those the transcoder rewrites, are not
// call metadata; `grpc-*` keys belong to the gRPC transport.
const NOT_METADATA = new Set([
  "host",
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "expect",
  "http2-settings",
  "content-length",
  "content-type",
]);

/**
 * Request headers as call metadata, lowercased, repeated headers kept, `-bin` values
 * base64-decoded. As Envoy does, the client's address is appended to `x-forwarded-for`, so the
 * service can tell REST callers apart (its last entry is the only one a client cannot forge).
 */
function requestMetadata(rawHeaders: readonly string[], remoteAddress: string | undefined): Metadata {
  const metadata = new Metadata();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const key = rawHeaders[i]!.toLowerCase();
    if (NOT_METADATA.has(key) || key.startsWith("grpc-")) continue;
    const value = rawHeaders[i + 1]!;
    try {
      metadata.add(key, key.endsWith("-bin") ? Buffer.from(value, "base64") : value);
    } catch {
      // gRPC metadata cannot carry this header (a key or value outside its charset): not forwarded.
    }
  }
  if (remoteAddress) {
    const forwarded = metadata.get("x-forwarded-for").map(String);
    metadata.set("x-forwarded-for", [...forwarded, remoteAddress].join(", "));
  }
  return metadata;
}

/** gRPC response metadata as HTTP headers (Envoy forwards it; the transport's own keys stay behind). */
function responseHeaders(metadata: Metadata | undefined): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = metadata ? metadata.toHttp2Headers() : {};
  for (const name of Object.keys(headers)) {
    if (NOT_METADATA.has(name) || name.startsWith("grpc-")) delete headers[name];
  }
  return headers;
}

const tooLarge = () => new LocalReply(413, "Request rejected because the transcoder's internal buffer size exceeds the configured limit.");

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  if (Number(req.headers["content-length"]) > limit) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) return void chunks.push(chunk);
      req.off("data", onData).resume(); // discard the rest; a 413 closes the connection
      reject(tooLarge());
    };
    req.on("data", onData);
    req.once("end", () => resolve(Buffer.concat(chunks, size)));
    req.once("error", reject);
    req.once("close", () => reject(new LocalReply(400, "the client closed the request"))); // no-op after end
  });
}

/** The address that reaches our own gRPC server when it is bound to `host`. */
function dialTarget(host: string, port: number): string {
  const reachable = host === "0.0.0.0" ? "127.0.0.1" : host === "::" ? "::1" : host;
  return reachable.includes(":") ? `[${reachable}]:${port}` : `${reachable}:${port}`;
}

export interface GatewayDeps {
  /** The descriptor set Envoy uses (envoy/descriptor.binpb). */
  descriptor: Uint8Array;
  maxBodyBytes: number;
  logger: Logger;
}

export interface Gateway {
  /** Listens on host:port and calls the gRPC server on grpcPort of the same host; returns the bound port. */
  listen(host: string, port: number, grpcPort: number): Promise<number>;
  /** Stops accepting, lets in-flight requests finish within graceMs, then closes the gRPC channel. */
  close(graceMs: number): Promise<void>;
}

interface Outcome {
  error: ServiceError | null;
  response: Buffer | undefined;
  headers: Metadata | undefined;
}

export function createGateway({ descriptor, maxBodyBytes, logger }: GatewayDeps): Gateway {
  const registry = loadRegistry(descriptor);
  const routes = buildRoutes(registry, gatewayServices(registry));
  const transcoder = createTranscoder(registry);
  const log = logger.child({ component: "gateway" });
  let running: { server: Server; client: Client } | undefined;
  let draining = false;

  const send = (res: ServerResponse, status: number, body: string, headers: OutgoingHttpHeaders) => {
    const payload = Buffer.from(body);
    // A 413 leaves an unread body behind; while stopping, each answer closes its connection so
    // close() does not wait for idle keep-alives.
    const connection = draining || status === 413 ? { connection: "close" } : {};
    res.writeHead(status, { ...headers, ...connection, "content-type": "application/json", "content-length": payload.length });
    res.end(payload);
  };

  const invoke = (channel: Client, route: Route, request: Uint8Array, req: IncomingMessage, res: ServerResponse) =>
    new Promise<Outcome>((resolve) => {
      let headers: Metadata | undefined;
      const call = channel.makeUnaryRequest<Uint8Array, Buffer>(
        route.grpcPath,
        (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
        (bytes) => bytes,
        request,
        requestMetadata(req.rawHeaders, req.socket.remoteAddress),
        { deadline: Date.now() + GATEWAY_DEADLINE_MS },
        (error, response) => {
          res.off("close", cancel);
          resolve({ error, response, headers });
        },
      );
      call.on("metadata", (metadata: Metadata) => (headers = metadata));
      // The client went away before the answer: cancel the call (its handler sees CANCELLED).
      const cancel = () => call.cancel();
      res.once("close", cancel);
    });

  const reply = (res: ServerResponse, route: Route, outcome: Outcome) => {
    const { error, response, headers } = outcome;
    if (!error) {
      // As Envoy: the status of a call that sent headers is copied into the response headers.
      send(res, 200, transcoder.response(route, response!), { ...responseHeaders(headers), "grpc-status": "0" });
      return;
    }
    const [details] = error.metadata.get("grpc-status-details-bin");
    if (!Buffer.isBuffer(details)) {
      // No status from our server: the channel itself failed, which Envoy answers from its router.
      if (error.code === Code.UNAVAILABLE) throw new LocalReply(503, "upstream connect error or disconnect/reset before headers. reset reason: connection failure");
      if (error.code === Code.DEADLINE_EXCEEDED) throw new LocalReply(504, "upstream request timeout");
    }
    // convert_grpc_status: the google.rpc.Status as JSON; a trailers-only answer's metadata are its headers.
    const body = transcoder.status(Buffer.isBuffer(details) ? details : undefined, error.code, error.details);
    send(res, httpStatusFromGrpc(error.code), body, responseHeaders(headers ?? error.metadata));
  };

  const handle = async (client: Client, req: IncomingMessage, res: ServerResponse) => {
    try {
      const target = req.url ?? "/";
      const found = routes.match(req.method ?? "", target);
      if (!found) throw new LocalReply(404, `Could not resolve ${target.split("?", 1)[0]} to a method.`);
      const body = await readBody(req, maxBodyBytes);
      const request = transcoder.request(found.route, found.bindings, body);
      reply(res, found.route, await invoke(client, found.route, request, req, res));
    } catch (err) {
      if (res.headersSent) return;
      const local = err instanceof LocalReply ? err : new LocalReply(500, "internal error");
      if (!(err instanceof LocalReply)) log.error({ err }, "gateway failure");
      send(res, local.status, localReplyBody(local), {});
    }
  };

  return {
    listen(host, port, grpcPort) {
      const client = new Client(dialTarget(host, grpcPort), credentials.createInsecure(), {
        "grpc.max_receive_message_length": GRPC_SERVER_OPTIONS["grpc.max_send_message_length"],
      });
      const server = createServer((req, res) => void handle(client, req, res));
      server.keepAliveTimeout = KEEP_ALIVE_MS;
      server.headersTimeout = KEEP_ALIVE_MS + 1_000;
      running = { server, client };
      draining = false;
      return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          server.off("error", reject);
          resolve((server.address() as AddressInfo).port);
        });
      });
    },
    async close(graceMs) {
      if (!running) return;
      const { server, client } = running;
      running = undefined;
      draining = true;
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => server.closeAllConnections(), graceMs);
        force.unref();
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
      });
      client.close();
    },
  };
}
