// The JSON /api listener: Envoy's gRPC-JSON transcoder, in-process. A request is routed by the
// google.api.http rules, transcoded to the method's protobuf bytes, and handed to that method's
// in-process invoker (src/server/invoker.ts), which runs the same middleware chain, decoding and
// encoding as a call on the gRPC port, without a second hop through a socket. What crosses is
// what a gRPC call would carry: the headers as metadata, a deadline, the client's cancellation.
import { createServer, STATUS_CODES, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { Metadata, status } from "@grpc/grpc-js";
import type { Logger } from "pino";
import { requestIdOf } from "../call/metadata";
import type { CallInput, CallOutcome, Invoker } from "../server/invoker";
import { apiDocsRoutes } from "./api-docs";
import { httpStatusFromGrpc, LOCAL_REPLIES, LocalReply, localReplyBody } from "./http-status";
import { buildOpenApi } from "./openapi";
import { plainRouteTable, type PlainRoute } from "./plain-routes";
import { buildRoutes, gatewayServices, type Route } from "./routes";
import { createTranscoder, loadRegistry } from "./transcode";

/**
 * Deadline of every call, and the route timeout after which the gateway answers 504 as Envoy
 * does: room for provisioning. envoy.yaml's route timeout is the same.
 */
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
    const key = rawHeaders[i].toLowerCase();
    if (NOT_METADATA.has(key) || key.startsWith("grpc-")) continue;
    const value = rawHeaders[i + 1];
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

/**
 * The client as grpc-js's getPeer() names a gRPC client (`address:port`, IPv6 without brackets),
 * so ctx.peer reads the same for REST and gRPC callers.
 */
function peerOf({ remoteAddress, remotePort }: Socket): string {
  if (!remoteAddress) return "unknown";
  return remotePort ? `${remoteAddress}:${remotePort}` : remoteAddress;
}

/** Response metadata as HTTP headers (Envoy forwards it; the transport's own keys stay behind). */
function responseHeaders(metadata: Metadata): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = metadata.toHttp2Headers();
  for (const name of Object.keys(headers)) {
    if (NOT_METADATA.has(name) || name.startsWith("grpc-")) delete headers[name];
  }
  return headers;
}

const tooLarge = () => new LocalReply(413, "Request rejected because the transcoder's internal buffer size exceeds the configured limit.");

/** The client went away before its request was read: nobody is left to answer. */
class ClientGone extends Error {}

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
    // A reset mid-body (`aborted`), or a request cut off by the request timeout. `close` follows
    // every request, also one read to its end: only an incomplete one counts.
    req.once("error", () => reject(new ClientGone()));
    req.once("close", () => req.complete || reject(new ClientGone()));
  });
}

/** How long a connection refused by the parser is still read from before it is closed. */
const LINGER_MS = 2_000;
/** Connections answered by answerClientError, lingering. */
const answered = new WeakSet<Socket>();

/** What Node's HTTP parser refuses before any handler runs, answered as Envoy answers it. */
const CLIENT_ERRORS: Record<string, LocalReply> = {
  ERR_HTTP_REQUEST_TIMEOUT: new LocalReply(408, "request timeout"),
  HPE_HEADER_OVERFLOW: new LocalReply(431, "request header fields too large"),
};

/**
 * A request Node could not read (malformed, headers too large, not in within the request
 * timeout): the google.rpc.Status JSON every other error has, then the connection closes, as
 * Node's own answer does (a bare status line without this listener). As Node does, a connection
 * whose current response has already begun is just closed.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Socket, current: ServerResponse | undefined): void {
  // The parser reports again for each later chunk of a connection already answered: it lingers.
  if (answered.has(socket)) return;
  // Nothing more may be written on a connection whose response is still being written, or whose
  // last response closed it (an earlier, finished response of a keep-alive connection is no bar).
  const done = current !== undefined && current.headersSent && (!current.writableFinished || !current.shouldKeepAlive);
  if (!socket.writable || err.code === "ECONNRESET" || done) return void socket.destroy();
  answered.add(socket);
  const reply = CLIENT_ERRORS[err.code ?? ""] ?? new LocalReply(400, "bad request");
  const body = Buffer.from(localReplyBody(reply));
  const head = `HTTP/1.1 ${reply.status} ${STATUS_CODES[reply.status] ?? ""}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`;
  socket.end(Buffer.concat([Buffer.from(head), body]));
  // The client may still be sending the rest of what was refused (an oversized request): closing
  // with unread data resets the connection, and the reset can overtake the answer. So the socket
  // stays a moment, while the parser goes on reading (and refusing) what still comes.
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}

export interface GatewayDeps {
  /** The descriptor set Envoy uses (envoy/descriptor.binpb). */
  descriptor: Uint8Array;
  /** By gRPC method path, the in-process invoker of every method a route names (bindService's). */
  invokers: ReadonlyMap<string, Invoker>;
  maxBodyBytes: number;
  logger: Logger;
  /** The calls' deadline and the routes' timeout; GATEWAY_DEADLINE_MS unless a test shortens it. */
  deadlineMs?: number;
  /** Plain HTTP handlers (probes) answered before the transcoder's routes, besides the API docs. */
  plainRoutes?: readonly PlainRoute[];
  /** The longest a client may take to send a whole request, headers and body (QOD_HTTP_REQUEST_TIMEOUT_MS). */
  requestTimeoutMs: number;
}

export interface Gateway {
  /** Listens on host:port (again for each port it serves: QOD's and Supavisor's); returns the bound port. */
  listen(host: string, port: number): Promise<number>;
  /** Stops accepting and lets in-flight requests (and so their calls) finish within graceMs. */
  close(graceMs: number): Promise<void>;
}

export function createGateway({ descriptor, invokers, maxBodyBytes, logger, deadlineMs = GATEWAY_DEADLINE_MS, plainRoutes = [], requestTimeoutMs }: GatewayDeps): Gateway {
  const registry = loadRegistry(descriptor);
  const routes = buildRoutes(registry, gatewayServices(registry));
  for (const route of routes.routes) {
    if (!invokers.has(route.grpcPath)) throw new Error(`no in-process invoker for ${route.grpcPath} (${route.httpMethod} ${route.template})`);
  }
  // Consulted first: the OpenAPI document (of this very route table), Swagger UI, and deps' handlers.
  const plain = plainRouteTable([...apiDocsRoutes(buildOpenApi(registry, routes.routes)), ...plainRoutes], routes);
  const transcoder = createTranscoder(registry);
  const log = logger.child({ component: "gateway" });
  const running = new Set<Server>();
  let draining = false;

  const send = (res: ServerResponse, status: number, body: string, headers: OutgoingHttpHeaders) => {
    const payload = Buffer.from(body);
    // A 413 leaves an unread body behind; while stopping, each answer closes its connection so
    // close() does not wait for idle keep-alives.
    const connection = draining || status === 413 ? { connection: "close" } : {};
    res.writeHead(status, { ...headers, ...connection, "content-type": "application/json", "content-length": payload.length });
    res.end(payload);
  };

  /**
   * Calls a route's method in-process, as Envoy's router calls it upstream: with a deadline that
   * is also the route's timeout (504, and the call is cancelled), and cancelled when the client
   * goes away, so the handler's ctx.signal aborts CANCELLED as on a gRPC cancel.
   */
  const invoke = (route: Route, request: Uint8Array, req: IncomingMessage, res: ServerResponse, metadata: Metadata) =>
    new Promise<CallOutcome>((resolve, reject) => {
      let cancel: (() => void) | undefined;
      const routeTimeout = () => new LocalReply(504, "upstream request timeout");
      const deadline = Date.now() + deadlineMs;
      const timeout = setTimeout(() => {
        cancel?.();
        reject(routeTimeout());
      }, deadlineMs);
      timeout.unref(); // the timeout alone does not keep a stopping process alive
      const call: CallInput = {
        surface: "rest",
        metadata,
        peer: peerOf(req.socket),
        deadline,
        onCancel(listener) {
          const stop = () => {
            res.off("close", cancelCall);
            cancel = undefined;
          };
          const cancelCall = () => {
            stop();
            listener();
          };
          cancel = cancelCall;
          res.once("close", cancelCall);
          return stop;
        },
      };
      invokers.get(route.grpcPath)!(request, call).then(
        (outcome) => {
          clearTimeout(timeout);
          // The call's deadline is the route's timeout: a call that ran out of it is the route's
          // timeout, whichever of the two timers fired first.
          if (outcome.error?.code === status.DEADLINE_EXCEEDED && Date.now() >= deadline) reject(routeTimeout());
          else resolve(outcome);
        },
        (err: unknown) => {
          clearTimeout(timeout);
          reject(err);
        },
      );
    });

  const reply = (res: ServerResponse, route: Route, { headers, response, error }: CallOutcome) => {
    if (!error) {
      // As Envoy: the status of a call that sent headers is copied into the response headers.
      send(res, 200, transcoder.response(route, response), { ...responseHeaders(headers), "grpc-status": "0" });
      return;
    }
    // convert_grpc_status: the google.rpc.Status as JSON.
    const [details] = error.metadata.get("grpc-status-details-bin");
    const body = transcoder.status(Buffer.isBuffer(details) ? details : undefined, error.code, error.details);
    send(res, httpStatusFromGrpc(error.code), body, responseHeaders(headers));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    // The request's id, also for a request refused before it is a call (no route, a body that
    // does not decode): the client's x-request-id when valid, else a new one, which the call uses.
    let requestId: string | undefined;
    // Once the call runs, its own line logs it (a route timeout too: the call is cancelled).
    let called = false;
    try {
      const target = req.url ?? "/";
      const plainHandler = plain.find(req.method ?? "", target);
      if (plainHandler) return await plainHandler(req, res);
      const metadata = requestMetadata(req.rawHeaders, req.socket.remoteAddress);
      requestId = requestIdOf(metadata);
      metadata.set("x-request-id", requestId);
      const found = routes.match(req.method ?? "", target);
      if (!found) throw new LocalReply(404, `Could not resolve ${target.split("?", 1)[0]} to a method.`);
      const body = await readBody(req, maxBodyBytes);
      const request = transcoder.request(found.route, found.bindings, body);
      called = true;
      reply(res, found.route, await invoke(found.route, request, req, res, metadata));
    } catch (err) {
      if (err instanceof ClientGone) {
        log.info({ method: req.method, path: (req.url ?? "/").split("?", 1)[0] }, "the client went away before its request was read");
        return;
      }
      if (res.headersSent) return;
      const local = err instanceof LocalReply ? err : new LocalReply(500, "internal error");
      if (!(err instanceof LocalReply)) log.error({ err, requestId }, "gateway failure");
      else if (!called) log.info({ requestId, method: req.method, path: (req.url ?? "/").split("?", 1)[0].slice(0, 200), status: local.status, reason: LOCAL_REPLIES[local.status] }, "request refused");
      send(res, local.status, localReplyBody(local, requestId), requestId ? { "x-request-id": requestId } : {});
    }
  };

  return {
    listen(host, port) {
      // A request must arrive whole within requestTimeoutMs (Node answers 408 and closes), so a
      // slow sender cannot hold a connection; the check runs every second, not every 30 s.
      const server = createServer(
        { requestTimeout: requestTimeoutMs, headersTimeout: Math.min(requestTimeoutMs, KEEP_ALIVE_MS + 1_000), connectionsCheckingInterval: 1_000 },
        (req, res) => void handle(req, res),
      );
      // The response each connection answers (or last answered), for answerClientError.
      const responses = new WeakMap<Socket, ServerResponse>();
      server.on("request", (req: IncomingMessage, res: ServerResponse) => responses.set(req.socket, res));
      server.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => answerClientError(err, socket, responses.get(socket)));
      server.keepAliveTimeout = KEEP_ALIVE_MS;
      draining = false;
      return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          server.off("error", reject);
          running.add(server);
          resolve((server.address() as AddressInfo).port);
        });
      });
    },
    async close(graceMs) {
      const servers = [...running];
      running.clear();
      draining = true;
      await Promise.all(
        servers.map(
          (server) =>
            new Promise<void>((resolve) => {
              const force = setTimeout(() => server.closeAllConnections(), graceMs);
              force.unref();
              server.close(() => {
                clearTimeout(force);
                resolve();
              });
            }),
        ),
      );
    },
  };
}
