// One client session after its handshake: relays bytes between the client and its engine.
//
// The relay is the hot path. Per chunk it does one write to the other side, with backpressure
// (pause the reader while the writer's buffer is full), and in the engine → client direction a
// length walk over message headers (MessageWalker), so that a FATAL can be injected at a message
// boundary when the control plane ends the session (ban, terminate, pool removed). No per-message
// allocation, no parsing of bodies.
import type { Socket } from "node:net";
import { fatal, fatalMessage, type Fatal } from "./fatal";
import { MessageType, MessageWalker, type CancelKey } from "./protocol";
import type { EngineSocket } from "./upstream";

export class Session {
  /** Where a CancelRequest for this session goes, once the engine issued its key. */
  cancel: { key: CancelKey; keyId: string; socketPath: string } | undefined;
  /** Resolves once both sockets are closed. */
  readonly closed: Promise<void>;

  readonly #client: Socket;
  #upstream: Socket | undefined;
  readonly #walker = new MessageWalker();
  /** The FATAL to send at the next message boundary; set once the session is being ended. */
  #ending: Buffer | undefined;
  #done = false;
  /** The client sent something the engine has not answered with ReadyForQuery yet (best effort). */
  #busy = false;
  /** The client's last chunk ended with Terminate: the engine closing next is the goodbye, not a loss. */
  #clientLeaving = false;
  #held = false;
  #timer: NodeJS.Timeout | undefined;
  readonly #terminateTimeoutMs: number;
  readonly #onClose: (session: Session) => void;
  #resolveClosed!: () => void;

  constructor(client: Socket, terminateTimeoutMs: number, onClose: (session: Session) => void) {
    this.#client = client;
    this.#terminateTimeoutMs = terminateTimeoutMs;
    this.#onClose = onClose;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    client.on("close", this.#destroy);
    client.on("error", this.#destroy);
    client.on("drain", this.#resumeUpstream);
  }

  get done(): boolean {
    return this.#done;
  }

  /**
   * Stops passing on what the engine sends, until terminate(): so that what happens upstream while
   * the session is being ended (a cancelled query's error) never overtakes the FATAL.
   */
  hold(): void {
    if (this.#done || this.#ending) return;
    this.#held = true;
    this.#upstream?.pause();
  }

  /** Whether a query may be running for this session (its last request not yet answered). */
  get busy(): boolean {
    return this.#busy && !this.#done;
  }

  /** The engine accepted the session: pass its greeting on, then relay both ways. */
  attach(engine: EngineSocket, greeting: Buffer, fromClient: Buffer): void {
    const upstream = engine.socket;
    if (this.#done || this.#ending) {
      upstream.destroy();
      return;
    }
    this.#upstream = upstream;
    upstream.on("drain", this.#resumeClient);
    upstream.on("close", this.#upstreamClosed);
    upstream.on("error", this.#upstreamClosed);
    const keepReading = this.#fromUpstream(greeting);
    while (this.#client.writableCorked > 0) this.#client.uncork(); // the SASL final message and the greeting, together
    if (this.#done) return;
    engine.receive(this.#fromUpstream);
    if (keepReading && !this.#held) upstream.resume(); // else the client's "drain" (or terminate) resumes it
    if (fromClient.length > 0) upstream.write(fromClient);
    this.#client.on("data", this.#fromClient);
    this.#client.resume();
  }

  /** Refuses the session before it reached the engine. */
  fail(response: Buffer): void {
    if (this.#done) return;
    this.#ending = response;
    this.#finishEnding();
  }

  /** Ends the session: the client gets `f` at the next message boundary, then the sockets close. */
  terminate(f: Fatal): void {
    if (this.#done || this.#ending) return;
    this.#ending = fatalMessage(f);
    this.#client.off("data", this.#fromClient); // what the client sends from now on is dropped
    if (!this.#upstream || this.#walker.atBoundary) {
      this.#finishEnding();
      return;
    }
    // Mid-message: the rest of it comes first. A client that does not read, or an engine that
    // does not send, cannot hold the session open for longer than the timeout.
    this.#held = false;
    this.#upstream.resume();
    this.#timer = setTimeout(this.#destroy, this.#terminateTimeoutMs);
  }

  #fromClient = (chunk: Buffer): void => {
    this.#busy = true;
    this.#clientLeaving = endsWithTerminate(chunk);
    if (!this.#upstream!.write(chunk)) this.#client.pause();
  };

  /** Gets each chunk the engine sends; false stops reading until the client drains. */
  #fromUpstream = (chunk: Buffer): boolean => {
    if (this.#ending) return this.#fromUpstreamWhileEnding(chunk);
    try {
      this.#walker.advance(chunk);
    } catch {
      this.#destroy(); // the engine broke the framing: nothing sane can follow
      return false;
    }
    if (this.#walker.lastType === MessageType.readyForQuery && this.#walker.atBoundary) this.#busy = false;
    return this.#client.write(chunk);
  };

  #fromUpstreamWhileEnding(chunk: Buffer): boolean {
    let used: number;
    try {
      used = this.#walker.advance(chunk, true);
    } catch {
      this.#destroy();
      return false;
    }
    const flowing = used === 0 || this.#client.write(used === chunk.length ? chunk : chunk.subarray(0, used));
    if (!this.#walker.atBoundary) return flowing; // the rest of the message still honours backpressure
    this.#finishEnding();
    return false;
  }

  #finishEnding(): void {
    clearTimeout(this.#timer);
    this.#upstream?.destroy();
    this.#client.off("data", this.#fromClient);
    this.#client.resume(); // read (and drop) what it sends, so its close is seen
    this.#client.end(this.#ending ?? Buffer.alloc(0));
    // end() flushes first; a client that never reads must not keep the socket.
    this.#timer = setTimeout(this.#destroy, this.#terminateTimeoutMs);
  }

  #upstreamClosed = (): void => {
    if (this.#done || this.#ending) return;
    // The engine went away (restart, route removed). Say so if the stream is at a boundary and
    // PgBouncer did not just send its own error; mid-message nothing clean can be said. After the
    // client's Terminate, PgBouncer closing is the answer to it: a FATAL then would reach a
    // client that is closing (node-postgres raises it as an error of a client already ended).
    if (this.#walker.atBoundary && this.#walker.lastType !== MessageType.errorResponse && !this.#clientLeaving) {
      this.#ending = fatalMessage(fatal.poolerLost());
    } else {
      this.#ending = Buffer.alloc(0);
    }
    this.#finishEnding();
  };

  #resumeClient = (): void => {
    if (!this.#ending) this.#client.resume();
  };

  #resumeUpstream = (): void => {
    if (!this.#held) this.#upstream?.resume();
  };

  #destroy = (): void => {
    if (this.#done) return;
    this.#done = true;
    clearTimeout(this.#timer);
    this.#client.destroy();
    this.#upstream?.destroy();
    this.#onClose(this);
    this.#resolveClosed();
  };
}

/** Whether `chunk` ends with a Terminate message ('X', length 4), as a client's last write does. */
function endsWithTerminate(chunk: Buffer): boolean {
  const at = chunk.length - 5;
  return at >= 0 && chunk[at] === MessageType.terminate && chunk.readInt32BE(at + 1) === 4;
}
