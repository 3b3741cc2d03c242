// The edge's side of a session with an engine: log in over the engine's unix socket (trust) to a
// route, and collect PgBouncer's greeting up to ReadyForQuery, to hand to the client as it is.
// Also the forwarding of a CancelRequest to the engine that issued the key.
import { connect, type Socket } from "node:net";
import {
  cancelRequest,
  errorMessageOf,
  FrameReader,
  MessageType,
  startupMessage,
  type CancelKey,
} from "./protocol";

/** The greeting is a handful of small messages (AuthenticationOk, ParameterStatus ×~12, BackendKeyData, ReadyForQuery). */
const GREETING_LIMIT = 64 * 1024;

/**
 * The edge's socket to an engine. Its reads land in a scratch buffer shared by every engine socket
 * of the edge and are copied out at once (before any other read can reuse it): no fresh 64 kB
 * buffer per read and no Readable-stream machinery on the hot path, and no buffer held per idle
 * session. Whoever `receive`s gets each chunk, and returns false to stop reading (resume() again).
 */
export class EngineSocket {
  readonly socket: Socket;
  #receiver: (chunk: Buffer) => boolean = () => true;

  constructor(path: string, scratch: Buffer) {
    this.socket = connect({ path, onread: { buffer: scratch, callback: (length, buffer) => this.#receiver(Buffer.from(buffer.subarray(0, length))) } });
  }

  receive(receiver: (chunk: Buffer) => boolean): void {
    this.#receiver = receiver;
  }
}

export type UpstreamLogin =
  | { ok: true; upstream: EngineSocket; greeting: Buffer; cancelKey: CancelKey | undefined }
  /** PgBouncer refused (its ErrorResponse, to pass on) or could not be reached (no error). */
  | { ok: false; error: Buffer | undefined; reason: string };

/**
 * Opens a session on `socketPath` as `parameters` (which name the route as `database`). Resolves
 * once PgBouncer sent ReadyForQuery, or with the reason it did not within `timeoutMs`.
 */
export function loginUpstream(socketPath: string, scratch: Buffer, parameters: ReadonlyMap<string, string>, timeoutMs: number): Promise<UpstreamLogin> {
  return new Promise((resolve) => {
    const upstream = new EngineSocket(socketPath, scratch);
    const socket = upstream.socket;
    const reader = new FrameReader(GREETING_LIMIT);
    const greeting: Buffer[] = [];
    let cancelKey: CancelKey | undefined;
    let settled = false;

    const finish = (result: UpstreamLogin) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      upstream.receive(() => false); // nothing is read until the session takes over
      socket.off("error", onError);
      socket.off("close", onClose);
      if (!result.ok) socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish({ ok: false, error: undefined, reason: "timeout" }), timeoutMs);
    const onError = (err: Error) => finish({ ok: false, error: undefined, reason: (err as NodeJS.ErrnoException).code ?? err.message });
    const onClose = () => finish({ ok: false, error: undefined, reason: "closed" });
    const onData = (chunk: Buffer): boolean => {
      try {
        reader.push(chunk);
        for (let message = reader.takeMessage(GREETING_LIMIT); message; message = reader.takeMessage(GREETING_LIMIT)) {
          const { raw } = message;
          switch (message.type) {
            case MessageType.authentication:
              // trust: AuthenticationOk (0); anything else means the engine is not configured as ours.
              if (message.body.length < 4 || message.body.readInt32BE(0) !== 0) {
                finish({ ok: false, error: undefined, reason: "engine asked for authentication" });
                return false;
              }
              greeting.push(raw);
              break;
            case MessageType.errorResponse:
              finish({ ok: false, error: raw, reason: errorMessageOf(message.body) });
              return false;
            case MessageType.backendKeyData:
              if (message.body.length === 8) cancelKey = { processId: message.body.readUInt32BE(0), secretKey: message.body.readUInt32BE(4) };
              greeting.push(raw);
              break;
            case MessageType.readyForQuery:
              greeting.push(raw, reader.drain());
              finish({ ok: true, upstream, greeting: Buffer.concat(greeting), cancelKey });
              return false;
            default: // ParameterStatus, NoticeResponse
              greeting.push(raw);
          }
        }
      } catch {
        finish({ ok: false, error: undefined, reason: "malformed greeting" });
        return false;
      }
      return true;
    };
    upstream.receive(onData);
    socket.on("error", onError);
    socket.on("close", onClose);
    socket.write(startupMessage(parameters));
  });
}

/**
 * Forwards a CancelRequest to the engine and lets PgBouncer close the socket: closing first can
 * crash PgBouncer 1.18 (bug #801). The socket is destroyed only if PgBouncer never closes it.
 */
export function forwardCancel(socketPath: string, key: CancelKey, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect({ path: socketPath });
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    socket.on("error", () => undefined);
    socket.on("close", () => {
      clearTimeout(timer);
      resolve();
    });
    socket.resume(); // PgBouncer sends nothing, but never let a read stall the close
    socket.write(cancelRequest(key));
  });
}
