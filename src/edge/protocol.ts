// Postgres wire protocol (v3) framing for the edge: the startup phase a client goes through
// (SSLRequest, GSSENCRequest, CancelRequest, StartupMessage, SASL), the messages the edge itself
// sends (ErrorResponse, authentication requests, NegotiateProtocolVersion), the StartupMessage and
// CancelRequest it sends upstream, and a cheap walker over message boundaries for relayed streams.
// Pure functions over Buffers: no sockets here.

/** Postgres's own limit (MAX_STARTUP_PACKET_LENGTH). */
export const MAX_STARTUP_PACKET_LENGTH = 10_000;
/** Typed messages accepted before authentication ends (SASL responses): Postgres allows 65535; SCRAM needs < 1 kB. */
export const MAX_AUTH_MESSAGE_LENGTH = 4096;

const SSL_REQUEST_CODE = 80877103;
const GSSENC_REQUEST_CODE = 80877104;
const CANCEL_REQUEST_CODE = 80877102;
const PROTOCOL_MAJOR = 3;
const PROTOCOL_MINOR = 0;
const PROTOCOL_3_0 = (PROTOCOL_MAJOR << 16) | PROTOCOL_MINOR;

/** A client broke the protocol; `code` is the SQLSTATE and `message` is safe to send back. */
export class ProtocolError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export type StartupPacket =
  | { kind: "ssl" }
  | { kind: "gssenc" }
  | { kind: "cancel"; key: CancelKey }
  | {
      kind: "startup";
      /** The minor version the client asked for (3.x); 0 is the one spoken. */
      minor: number;
      parameters: Map<string, string>;
      /** `_pq_.` protocol options the client asked for: none is supported. */
      protocolOptions: string[];
    };

/** A session's BackendKeyData, as a CancelRequest carries it. */
export interface CancelKey {
  processId: number;
  secretKey: number;
}

/** Map key for a cancel key. */
export const cancelKeyId = (key: CancelKey): string => `${key.processId}:${key.secretKey}`;

/**
 * Bytes read from a socket during a handshake, taken out frame by frame. Bounded: `limit` is the
 * most it ever holds (a client that sends more than the handshake needs is refused). Chunks are
 * joined only when a header or a whole frame is in, so a client trickling bytes one at a time costs
 * linear work, not a copy of everything so far per byte.
 */
export class FrameReader {
  #chunks: Buffer[] = [];
  #size = 0;
  /** Total length of the frame at the front, once its header is in; reset when it is taken. */
  #frameLength: number | undefined;
  readonly #limit: number;

  constructor(limit: number) {
    this.#limit = limit;
  }

  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    if (this.#size > this.#limit) throw new ProtocolError("08P01", "too much data during the handshake");
  }

  get buffered(): number {
    return this.#size;
  }

  /** Everything not taken yet (and empties the reader). */
  drain(): Buffer {
    const rest = this.#joined();
    this.#chunks = [];
    this.#size = 0;
    this.#frameLength = undefined;
    return rest;
  }

  /** An untyped startup-phase packet (`int32 length` then the body), or undefined until complete. */
  takeStartupPacket(): StartupPacket | undefined {
    const frame = this.#takeFrame(4, (head) => {
      const length = head.readUInt32BE(0);
      if (length < 8 || length > MAX_STARTUP_PACKET_LENGTH) throw new ProtocolError("08P01", "invalid length of startup packet");
      return length;
    });
    return frame && parseStartupBody(frame.subarray(4));
  }

  /** A typed message (`byte type`, `int32 length`, body; `raw` is all of it), or undefined until complete. */
  takeMessage(maxLength: number): { type: number; body: Buffer; raw: Buffer } | undefined {
    const raw = this.#takeFrame(5, (head) => {
      const length = head.readUInt32BE(1);
      if (length < 4 || length > maxLength) throw new ProtocolError("08P01", "invalid message length");
      return length + 1;
    });
    return raw && { type: raw[0], body: raw.subarray(5), raw };
  }

  /** The frame at the front once all of it is in: its header (`headerSize` bytes) gives its total length. */
  #takeFrame(headerSize: number, totalLength: (header: Buffer) => number): Buffer | undefined {
    if (this.#frameLength === undefined) {
      if (this.#size < headerSize) return undefined;
      this.#frameLength = totalLength(this.#joined());
    }
    if (this.#size < this.#frameLength) return undefined;
    const all = this.#joined();
    const frame = all.subarray(0, this.#frameLength);
    const rest = all.subarray(this.#frameLength);
    this.#chunks = rest.length > 0 ? [rest] : [];
    this.#size = rest.length;
    this.#frameLength = undefined;
    return frame;
  }

  #joined(): Buffer {
    if (this.#chunks.length !== 1) this.#chunks = [Buffer.concat(this.#chunks, this.#size)];
    return this.#chunks[0];
  }
}

function parseStartupBody(body: Buffer): StartupPacket {
  const code = body.readUInt32BE(0);
  if (code === SSL_REQUEST_CODE || code === GSSENC_REQUEST_CODE) {
    if (body.length !== 4) throw new ProtocolError("08P01", "invalid length of startup packet");
    return { kind: code === SSL_REQUEST_CODE ? "ssl" : "gssenc" };
  }
  if (code === CANCEL_REQUEST_CODE) {
    if (body.length !== 12) throw new ProtocolError("08P01", "invalid length of cancel request");
    return { kind: "cancel", key: { processId: body.readUInt32BE(4), secretKey: body.readUInt32BE(8) } };
  }
  const major = code >>> 16;
  const minor = code & 0xffff;
  if (major !== PROTOCOL_MAJOR) {
    throw new ProtocolError(
      "0A000",
      `unsupported frontend protocol ${major}.${minor}: server supports ${PROTOCOL_MAJOR}.0 to ${PROTOCOL_MAJOR}.${PROTOCOL_MINOR}`,
    );
  }
  const parameters = new Map<string, string>();
  const protocolOptions: string[] = [];
  let at = 4;
  for (;;) {
    const nameEnd = body.indexOf(0, at);
    if (nameEnd < 0) throw new ProtocolError("08P01", "invalid startup packet layout: expected terminator as last byte");
    if (nameEnd === at) break; // the empty name ends the list
    const valueEnd = body.indexOf(0, nameEnd + 1);
    if (valueEnd < 0) throw new ProtocolError("08P01", "invalid startup packet layout: expected terminator as last byte");
    const name = body.toString("utf8", at, nameEnd);
    const value = body.toString("utf8", nameEnd + 1, valueEnd);
    if (name.startsWith("_pq_.")) protocolOptions.push(name);
    else parameters.set(name, value);
    at = valueEnd + 1;
  }
  if (at !== body.length - 1) throw new ProtocolError("08P01", "invalid startup packet layout: expected terminator as last byte");
  return { kind: "startup", minor, parameters, protocolOptions };
}

/** SASLInitialResponse: the mechanism the client chose and its first message. */
export function parseSaslInitialResponse(body: Buffer): { mechanism: string; data: string } {
  const nameEnd = body.indexOf(0);
  if (nameEnd < 0 || body.length < nameEnd + 5) throw new ProtocolError("08P01", "malformed SASLInitialResponse message");
  const length = body.readInt32BE(nameEnd + 1);
  const data = body.subarray(nameEnd + 5);
  if (length !== data.length) throw new ProtocolError("08P01", "malformed SASLInitialResponse message");
  return { mechanism: body.toString("utf8", 0, nameEnd), data: data.toString("utf8") };
}

// ---- messages the edge sends ------------------------------------------------------------------

function typedMessage(type: string, body: Buffer): Buffer {
  const message = Buffer.allocUnsafe(body.length + 5);
  message.write(type, 0, "latin1");
  message.writeUInt32BE(body.length + 4, 1);
  body.copy(message, 5);
  return message;
}

const cstring = (text: string): Buffer => Buffer.from(`${text}\0`, "utf8");

function int32(value: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeInt32BE(value, 0);
  return b;
}

/** ErrorResponse as Postgres frames it (S, V, C, M and an optional D), so psql prints `FATAL:  …`. */
export function errorResponse(error: { severity: "FATAL" | "ERROR"; code: string; message: string; detail?: string }): Buffer {
  const fields = [
    cstring(`S${error.severity}`),
    cstring(`V${error.severity}`),
    cstring(`C${error.code}`),
    cstring(`M${stripNul(error.message)}`),
    ...(error.detail === undefined ? [] : [cstring(`D${stripNul(error.detail)}`)]),
    Buffer.from([0]),
  ];
  return typedMessage("E", Buffer.concat(fields));
}

const stripNul = (text: string): string => text.replaceAll("\0", "");

export const authenticationSasl = (mechanisms: readonly string[]): Buffer =>
  typedMessage("R", Buffer.concat([int32(10), ...mechanisms.map(cstring), Buffer.from([0])]));

export const authenticationSaslContinue = (data: string): Buffer => typedMessage("R", Buffer.concat([int32(11), Buffer.from(data, "utf8")]));

export const authenticationSaslFinal = (data: string): Buffer => typedMessage("R", Buffer.concat([int32(12), Buffer.from(data, "utf8")]));

/** Tells a client that asked for 3.x (x > 0) or `_pq_.` options what the server speaks. */
export const negotiateProtocolVersion = (unsupportedOptions: readonly string[]): Buffer =>
  typedMessage("v", Buffer.concat([int32(PROTOCOL_3_0), int32(unsupportedOptions.length), ...unsupportedOptions.map(cstring)]));

/** A StartupMessage (protocol 3.0) with these parameters. */
export function startupMessage(parameters: ReadonlyMap<string, string>): Buffer {
  const parts = [int32(PROTOCOL_3_0)];
  for (const [name, value] of parameters) parts.push(cstring(name), cstring(value));
  parts.push(Buffer.from([0]));
  const body = Buffer.concat(parts);
  return Buffer.concat([int32(body.length + 4), body]);
}

export function cancelRequest(key: CancelKey): Buffer {
  const packet = Buffer.allocUnsafe(16);
  packet.writeUInt32BE(16, 0);
  packet.writeUInt32BE(CANCEL_REQUEST_CODE, 4);
  packet.writeUInt32BE(key.processId, 8);
  packet.writeUInt32BE(key.secretKey, 12);
  return packet;
}

/** Byte values of the message types the edge reads. */
export const MessageType = {
  authentication: 0x52, // R
  backendKeyData: 0x4b, // K
  errorResponse: 0x45, // E
  parameterStatus: 0x53, // S
  readyForQuery: 0x5a, // Z
  noticeResponse: 0x4e, // N
  saslResponse: 0x70, // p
  terminate: 0x58, // X
} as const;

/** The human text (M field) of an ErrorResponse body. */
export function errorMessageOf(body: Buffer): string {
  let at = 0;
  while (at < body.length && body[at] !== 0) {
    const end = body.indexOf(0, at + 1);
    if (end < 0) break;
    if (body[at] === 0x4d) return body.toString("utf8", at + 1, end);
    at = end + 1;
  }
  return "";
}

/**
 * Follows the message framing of one direction of a relayed stream (`byte type`, `int32 length`,
 * body) with a length walk: per chunk it touches only message headers, and holds no buffers.
 * It tells whether the stream stands at a message boundary, where a message may be injected.
 */
export class MessageWalker {
  /** Body bytes of the current message still to come. */
  #remaining = 0;
  /** Header bytes of the next message seen so far (0..4), and the length read from them. */
  #headerRead = 0;
  #length = 0;
  /** Type byte of the latest message whose header was read. */
  lastType = 0;

  get atBoundary(): boolean {
    return this.#remaining === 0 && this.#headerRead === 0;
  }

  /**
   * Walks over `chunk` and returns how many bytes it consumed: the whole chunk, or, with
   * `stopAtBoundary`, the bytes up to the first boundary reached. Throws on an impossible length.
   */
  advance(chunk: Buffer, stopAtBoundary = false): number {
    const end = chunk.length;
    let at = 0;
    while (at < end) {
      if (this.#remaining > 0) {
        const step = Math.min(this.#remaining, end - at);
        at += step;
        this.#remaining -= step;
        if (this.#remaining === 0 && stopAtBoundary) return at;
        continue;
      }
      if (this.#headerRead === 0 && end - at >= 5) {
        // The common case: a whole header inside the chunk.
        this.lastType = chunk[at]!;
        this.#remaining = this.#bodyLength(chunk.readUInt32BE(at + 1));
        at += 5;
      } else {
        if (this.#headerRead === 0) {
          this.lastType = chunk[at]!;
          this.#length = 0;
        } else {
          this.#length = this.#length * 256 + chunk[at];
        }
        at++;
        if (++this.#headerRead < 5) continue;
        this.#headerRead = 0;
        this.#remaining = this.#bodyLength(this.#length);
      }
      if (this.#remaining === 0 && stopAtBoundary) return at;
    }
    return at;
  }

  #bodyLength(length: number): number {
    if (length < 4) throw new ProtocolError("08P01", "invalid message length in relayed stream");
    return length - 4;
  }
}
