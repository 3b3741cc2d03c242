// The client side of a handshake: reading the startup packets (with the SSL and GSS negotiation)
// and running SCRAM-SHA-256 over SASL. Everything here is bounded: packet sizes by the protocol
// limits, total buffered bytes by the FrameReader, time by the caller's timer (it destroys the socket).
import type { Socket } from "node:net";
import { TLSSocket, type SecureContext } from "node:tls";
import { SCRAM_MECHANISM, ScramServerExchange, type ScramVerifier } from "../scram";
import { fatal, fatalMessage, type Fatal } from "./fatal";
import {
  authenticationSasl,
  authenticationSaslContinue,
  FrameReader,
  MAX_AUTH_MESSAGE_LENGTH,
  MAX_STARTUP_PACKET_LENGTH,
  MessageType,
  negotiateProtocolVersion,
  parseSaslInitialResponse,
  ProtocolError,
  type CancelKey,
} from "./protocol";

/** The client went away (or the timer destroyed its socket): nothing more to say to it. */
export class ClientGone extends Error {}

/** A handshake FATAL to send: the client is told, then the connection ends. */
export class HandshakeRefused extends Error {
  constructor(readonly fatal: Fatal) {
    super(fatal.message);
  }
}

/** How long a refused client has to read its FATAL before the socket is destroyed. */
const REFUSAL_FLUSH_MS = 2_000;

/** The most a client may have sent and not yet been read during the handshake. */
const HANDSHAKE_BUFFER_LIMIT = MAX_STARTUP_PACKET_LENGTH + MAX_AUTH_MESSAGE_LENGTH;

/** A client connection while it is in the handshake: a socket (plain or TLS) and what it sent. */
export class ClientConnection {
  socket: Socket;
  #reader = new FrameReader(HANDSHAKE_BUFFER_LIMIT);
  #wake: (() => void) | undefined;
  #gone = false;
  #protocolError: ProtocolError | undefined;
  #secure = false;

  constructor(socket: Socket) {
    this.socket = socket;
    this.#listen(socket);
  }

  get secure(): boolean {
    return this.#secure;
  }

  /** The client closed, or was refused. */
  get gone(): boolean {
    return this.#gone;
  }

  #onData = (chunk: Buffer): void => {
    try {
      this.#reader.push(chunk);
    } catch (err) {
      this.#protocolError = err as ProtocolError;
      this.socket.pause();
    }
    this.#wake?.();
  };

  #onGone = (): void => {
    this.#gone = true;
    this.#wake?.();
  };

  #listen(socket: Socket): void {
    socket.on("data", this.#onData);
    socket.once("end", this.#onGone);
    socket.once("close", this.#onGone);
    socket.on("error", this.#onGone);
  }

  #unlisten(socket: Socket): void {
    socket.off("data", this.#onData);
    socket.off("end", this.#onGone);
    socket.off("close", this.#onGone);
    socket.off("error", this.#onGone);
  }

  /** Waits until `take` gets something out of the reader. */
  async next<T>(take: (reader: FrameReader) => T | undefined): Promise<T> {
    for (;;) {
      if (this.#protocolError) throw this.#protocolError;
      const value = take(this.#reader);
      if (value !== undefined) return value;
      if (this.#gone) throw new ClientGone();
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = undefined;
    }
  }

  get buffered(): number {
    return this.#reader.buffered;
  }

  send(bytes: Buffer): void {
    if (!this.#gone) this.socket.write(bytes);
  }

  /** Sends the FATAL and ends the connection (at once if the client does not read it soon). */
  refuse(f: Fatal): void {
    if (this.#gone) return;
    this.#gone = true;
    this.#wake?.();
    const socket = this.socket;
    socket.end(fatalMessage(f));
    socket.destroySoon();
    setTimeout(() => socket.destroy(), REFUSAL_FLUSH_MS).unref();
  }

  /** Answers an SSLRequest with `S` and wraps the socket in TLS; resolves once the TLS handshake is done. */
  async upgrade(secureContext: SecureContext): Promise<void> {
    // Bytes after the SSLRequest and before the TLS handshake would be read as if encrypted (CVE-2021-23214).
    if (this.#reader.buffered > 0) throw new ProtocolError("08P01", "received unencrypted data after SSL request");
    const plain = this.socket;
    this.#unlisten(plain);
    plain.write("S");
    const secure = new TLSSocket(plain, { isServer: true, secureContext });
    secure.on("error", () => undefined); // a failed TLS handshake ends in "close"
    this.socket = secure;
    this.#secure = true;
    await new Promise<void>((resolve, reject) => {
      secure.once("secure", resolve);
      secure.once("error", () => reject(new ClientGone()));
      secure.once("close", () => reject(new ClientGone()));
    });
    this.#listen(secure);
  }

  /** Ends the handshake: stops reading and hands over whatever the client sent beyond it. */
  release(): Buffer {
    this.socket.pause();
    this.#unlisten(this.socket);
    return this.#reader.drain();
  }
}

export type StartupResult =
  | { kind: "cancel"; key: CancelKey }
  | { kind: "startup"; parameters: Map<string, string> };

/**
 * Reads startup packets until a StartupMessage or a CancelRequest: answers SSLRequest (`S` and TLS
 * when a certificate is configured, else `N`) and GSSENCRequest (`N`), and tells a client that
 * asked for a newer 3.x minor version or `_pq_.` options what is spoken (NegotiateProtocolVersion).
 */
export async function readStartup(conn: ClientConnection, secureContext: SecureContext | undefined): Promise<StartupResult> {
  const negotiated = new Set<string>(); // each negotiation at most once, as Postgres allows
  for (;;) {
    const packet = await conn.next((r) => r.takeStartupPacket());
    if (packet.kind === "ssl" || packet.kind === "gssenc") {
      if (negotiated.has(packet.kind) || conn.secure) throw new ProtocolError("08P01", "unexpected encryption request");
      negotiated.add(packet.kind);
    }
    switch (packet.kind) {
      case "ssl":
        if (secureContext) await conn.upgrade(secureContext);
        else conn.send(Buffer.from("N"));
        break;
      case "gssenc":
        if (conn.buffered > 0) throw new ProtocolError("08P01", "received unencrypted data after GSSAPI encryption request");
        conn.send(Buffer.from("N"));
        break;
      case "cancel":
        return { kind: "cancel", key: packet.key };
      case "startup":
        if (packet.minor > 0 || packet.protocolOptions.length > 0) conn.send(negotiateProtocolVersion(packet.protocolOptions));
        return { kind: "startup", parameters: packet.parameters };
    }
  }
}

/**
 * Runs SCRAM-SHA-256 against `verifier` (a dummy one when the identity is unknown: the client sees
 * the same exchange). Returns the server-final-message when the proof is right, undefined when not.
 * Protocol violations throw (ProtocolError, ScramError).
 */
export async function authenticateScram(conn: ClientConnection, verifier: ScramVerifier): Promise<string | undefined> {
  const exchange = new ScramServerExchange(verifier);
  conn.send(authenticationSasl([SCRAM_MECHANISM]));
  const initial = parseSaslInitialResponse(await nextSaslMessage(conn));
  if (initial.mechanism !== SCRAM_MECHANISM) throw new HandshakeRefused(fatal.saslMechanism());
  conn.send(authenticationSaslContinue(exchange.start(initial.data)));
  const final = exchange.finish((await nextSaslMessage(conn)).toString("utf8"));
  return final.ok ? final.serverFinal : undefined;
}

async function nextSaslMessage(conn: ClientConnection): Promise<Buffer> {
  const message = await conn.next((r) => r.takeMessage(MAX_AUTH_MESSAGE_LENGTH));
  if (message.type === MessageType.terminate) throw new ClientGone();
  if (message.type !== MessageType.saslResponse) throw new HandshakeRefused(fatal.saslExpected());
  return message.body;
}
