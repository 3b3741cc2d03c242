// SCRAM-SHA-256 (RFC 5802, RFC 7677) as Postgres speaks it: verifiers in pg_authid's text form, and the
// server side of the exchange. Bottom layer: depends on node:crypto only.
//
// A verifier is derived once, when a password is written, so a login costs a few HMACs, not PBKDF2.
// Passwords go through SASLprep as Postgres's pg_saslprep() does (see preparePassword below).
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";

export const SCRAM_MECHANISM = "SCRAM-SHA-256";
export const SCRAM_ITERATIONS = 4096;
const SALT_BYTES = 16;
const KEY_BYTES = 32;
const SERVER_NONCE_BYTES = 18; // as Postgres: 24 base64 characters
/** Postgres refuses longer SCRAM messages too; nothing legitimate comes close. */
const MAX_MESSAGE_LENGTH = 1024;

export interface ScramVerifier {
  iterations: number;
  salt: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

/** A client broke the SCRAM protocol. The message is safe to send to that client. */
export class ScramError extends Error {}

const hmac = (key: Buffer, data: string | Buffer): Buffer => createHmac("sha256", key).update(data).digest();
const sha256 = (data: Buffer): Buffer => createHash("sha256").update(data).digest();

/** The verifier of `password` in pg_authid's form: `SCRAM-SHA-256$<i>:<salt>$<StoredKey>:<ServerKey>`. */
export function scramVerifier(password: string, options: { iterations?: number; salt?: Buffer } = {}): string {
  const iterations = options.iterations ?? SCRAM_ITERATIONS;
  const salt = options.salt ?? randomBytes(SALT_BYTES);
  const salted = pbkdf2Sync(preparePassword(password), salt, iterations, KEY_BYTES, "sha256");
  const storedKey = sha256(hmac(salted, "Client Key"));
  const serverKey = hmac(salted, "Server Key");
  return formatScramVerifier({ iterations, salt, storedKey, serverKey });
}

export function formatScramVerifier(v: ScramVerifier): string {
  const b64 = (b: Buffer) => b.toString("base64");
  return `${SCRAM_MECHANISM}$${v.iterations}:${b64(v.salt)}$${b64(v.storedKey)}:${b64(v.serverKey)}`;
}

const BASE64 = "[A-Za-z0-9+/]+={0,2}";
const VERIFIER = new RegExp(`^SCRAM-SHA-256\\$([1-9][0-9]{0,8}):(${BASE64})\\$(${BASE64}):(${BASE64})$`);

/** Parses a stored verifier; undefined when it is not a well-formed SCRAM-SHA-256 verifier. */
export function parseScramVerifier(text: string): ScramVerifier | undefined {
  const m = VERIFIER.exec(text);
  if (!m) return undefined;
  const salt = strictBase64(m[2]);
  const storedKey = strictBase64(m[3]);
  const serverKey = strictBase64(m[4]);
  if (!salt || salt.length === 0 || storedKey?.length !== KEY_BYTES || serverKey?.length !== KEY_BYTES) return undefined;
  return { iterations: Number(m[1]), salt, storedKey, serverKey };
}

/** Base64 that decodes and re-encodes to itself (Buffer.from alone skips junk silently). */
function strictBase64(text: string): Buffer | undefined {
  const bytes = Buffer.from(text, "base64");
  return bytes.toString("base64") === text ? bytes : undefined;
}

/**
 * Verifiers for identities that do not exist (unknown tenant, unknown user), so that the exchange
 * runs exactly as for a real user: the same messages, the same work, and the same salt each time
 * for the same identity (a real user's salt does not change between attempts either). The key is
 * per process, so nothing about it can be learned across restarts or instances.
 */
export class DummyVerifiers {
  readonly #key: Buffer;

  constructor(key: Buffer = randomBytes(32)) {
    this.#key = key;
  }

  verifierFor(identity: string): ScramVerifier {
    const derive = (label: string) => hmac(this.#key, `${label}\0${identity}`);
    return {
      iterations: SCRAM_ITERATIONS,
      salt: derive("salt").subarray(0, SALT_BYTES),
      storedKey: derive("stored-key"),
      serverKey: derive("server-key"),
    };
  }
}

export type ScramFinish = { ok: true; serverFinal: string } | { ok: false };

/**
 * The server side of one exchange: start() takes the client-first-message and answers the
 * server-first-message; finish() takes the client-final-message and answers the server-final-message
 * when the proof is right. Malformed input throws ScramError; a wrong proof is { ok: false }.
 */
export class ScramServerExchange {
  readonly #verifier: ScramVerifier;
  readonly #serverNonce: string;
  #state: { gs2Header: string; clientFirstBare: string; nonce: string; serverFirst: string } | undefined;
  #finished = false;

  constructor(verifier: ScramVerifier, serverNonce = randomBytes(SERVER_NONCE_BYTES).toString("base64")) {
    this.#verifier = verifier;
    this.#serverNonce = serverNonce;
  }

  start(clientFirst: string): string {
    if (this.#state) throw new ScramError("unexpected SCRAM message");
    checkMessage(clientFirst);
    // gs2-header: cbind-flag "," [authzid] ","
    const flag = clientFirst[0];
    if (flag === "p") throw new ScramError("channel binding was requested, but the server did not offer SCRAM-SHA-256-PLUS");
    // "n": the client does not support channel binding; "y": it does but thinks the server does not,
    // which is true here (SCRAM-SHA-256-PLUS is never offered), so both are fine.
    if ((flag !== "n" && flag !== "y") || clientFirst[1] !== ",") throw new ScramError("malformed SCRAM message");
    const authzidEnd = clientFirst.indexOf(",", 2);
    if (authzidEnd < 0) throw new ScramError("malformed SCRAM message");
    if (authzidEnd !== 2) throw new ScramError("client uses authorization identity, but it is not supported");
    const gs2Header = clientFirst.slice(0, 3);
    const clientFirstBare = clientFirst.slice(3);
    const attributes = clientFirstBare.split(",");
    if (attributes[0]?.startsWith("m=")) throw new ScramError("client requires an unsupported SCRAM extension");
    // The user name is ignored, as Postgres does: the startup packet's user is the one that counts.
    if (!attributes[0]?.startsWith("n=")) throw new ScramError("malformed SCRAM message");
    const clientNonce = attributes[1]?.startsWith("r=") ? attributes[1].slice(2) : "";
    if (!isPrintable(clientNonce)) throw new ScramError("malformed SCRAM message");
    const nonce = clientNonce + this.#serverNonce;
    const serverFirst = `r=${nonce},s=${this.#verifier.salt.toString("base64")},i=${this.#verifier.iterations}`;
    this.#state = { gs2Header, clientFirstBare, nonce, serverFirst };
    return serverFirst;
  }

  finish(clientFinal: string): ScramFinish {
    const state = this.#state;
    if (!state || this.#finished) throw new ScramError("unexpected SCRAM message");
    this.#finished = true;
    checkMessage(clientFinal);
    const proofAt = clientFinal.lastIndexOf(",p=");
    if (proofAt < 0) throw new ScramError("malformed SCRAM message");
    const withoutProof = clientFinal.slice(0, proofAt);
    const attributes = withoutProof.split(",");
    if (attributes[0] !== `c=${Buffer.from(state.gs2Header).toString("base64")}`) {
      throw new ScramError("SCRAM channel binding check failed");
    }
    if (attributes[1] !== `r=${state.nonce}`) throw new ScramError("SCRAM nonce mismatch");
    const proof = strictBase64(clientFinal.slice(proofAt + 3));
    if (proof?.length !== KEY_BYTES) throw new ScramError("malformed SCRAM message");

    const authMessage = `${state.clientFirstBare},${state.serverFirst},${withoutProof}`;
    const clientSignature = hmac(this.#verifier.storedKey, authMessage);
    for (let i = 0; i < KEY_BYTES; i++) clientSignature[i] ^= proof[i]; // now the ClientKey
    if (!timingSafeEqual(sha256(clientSignature), this.#verifier.storedKey)) return { ok: false };
    return { ok: true, serverFinal: `v=${hmac(this.#verifier.serverKey, authMessage).toString("base64")}` };
  }
}

function checkMessage(message: string): void {
  if (message.length === 0 || message.length > MAX_MESSAGE_LENGTH || !isPrintableAscii(message)) {
    throw new ScramError("malformed SCRAM message");
  }
}

/** RFC 5802 `printable`: %x21-2B / %x2D-7E (no comma). */
function isPrintable(text: string): boolean {
  return text.length > 0 && /^[\x21-\x2b\x2d-\x7e]+$/.test(text);
}

function isPrintableAscii(text: string): boolean {
  return /^[\x20-\x7e]+$/.test(text);
}

// ---- SASLprep (RFC 4013), as Postgres's pg_saslprep() applies it ------------------------------------------
//
// ASCII passwords are used as they are (Postgres's own fast path; SASLprep changes no ASCII string
// it accepts, and for the ones it rejects Postgres falls back to the raw bytes). For anything else
// the steps follow pg_saslprep(): map non-ASCII spaces to U+0020 and drop the "mapped to nothing"
// characters; an empty result, a prohibited character or a bidi violation (checked on the mapped,
// unnormalised input, as Postgres does) means the raw UTF-8 bytes are used instead; otherwise the
// NFKC form is. Two documented approximations, to keep this file free of Unicode 3.2 tables:
// unassigned code points are those unassigned in the Unicode version of this Node (Postgres uses
// Unicode 3.2's list, so a character assigned later, e.g. an emoji, makes Postgres use the raw
// bytes where we normalise), and "left-to-right" (RFC 3454 D.2) is approximated as letters and
// spacing marks outside the right-to-left table. Passwords the control plane generates are ASCII.

const NON_ASCII_SPACE = /[\u00a0\u1680\u2000-\u200b\u202f\u205f\u3000]/gu;
const MAPPED_TO_NOTHING = /[\u00ad\u034f\u1806\u180b-\u180d\u200b-\u200d\u2060\ufe00-\ufe0f\ufeff]/gu;
// RFC 3454 C.2.1, C.2.2, C.3, C.4, C.5, C.6, C.7, C.8, C.9 (C.1.2 is mapped away before the check).
const PROHIBITED = new RegExp(
  "[\\u0000-\\u001f\\u007f-\\u009f\\u0340\\u0341\\u06dd\\u070f\\u180e\\u200c-\\u200f\\u2028-\\u202e\\u2060-\\u2063" +
    "\\u206a-\\u206f\\u2ff0-\\u2ffb\\ud800-\\uf8ff\\ufdd0-\\ufdef\\ufeff\\ufff9-\\uffff\\u{1d173}-\\u{1d17a}" +
    "\\u{e0001}\\u{e0020}-\\u{e007f}\\u{f0000}-\\u{10ffff}\\u{1fffe}\\u{1ffff}\\u{2fffe}\\u{2ffff}\\u{3fffe}\\u{3ffff}" +
    "\\u{4fffe}\\u{4ffff}\\u{5fffe}\\u{5ffff}\\u{6fffe}\\u{6ffff}\\u{7fffe}\\u{7ffff}\\u{8fffe}\\u{8ffff}\\u{9fffe}" +
    "\\u{9ffff}\\u{afffe}\\u{affff}\\u{bfffe}\\u{bffff}\\u{cfffe}\\u{cffff}\\u{dfffe}\\u{dffff}\\u{efffe}\\u{effff}]|\\p{Cn}",
  "u",
);
// RFC 3454 D.1: bidirectional category R or AL.
const RAND_AL =
  "\\u05be\\u05c0\\u05c3\\u05d0-\\u05ea\\u05f0-\\u05f4\\u061b\\u061f\\u0621-\\u063a\\u0640-\\u064a\\u066d-\\u066f" +
  "\\u0671-\\u06d5\\u06dd\\u06e5\\u06e6\\u06fa-\\u06fe\\u0700-\\u070d\\u0710\\u0712-\\u072c\\u0780-\\u07a5\\u07b1" +
  "\\u200f\\ufb1d\\ufb1f-\\ufb28\\ufb2a-\\ufb36\\ufb38-\\ufb3c\\ufb3e\\ufb40\\ufb41\\ufb43\\ufb44\\ufb46-\\ufbb1" +
  "\\ufbd3-\\ufd3d\\ufd50-\\ufd8f\\ufd92-\\ufdc7\\ufdf0-\\ufdfc\\ufe70-\\ufe74\\ufe76-\\ufefc";
const RAND_AL_CHAR = new RegExp(`[${RAND_AL}]`, "u");
const LEFT_TO_RIGHT_CHAR = new RegExp(`(?![${RAND_AL}])[\\p{L}\\p{Mc}]`, "u");

/** The bytes PBKDF2 gets for `password`, as Postgres (server) and libpq (client) prepare them. */
export function preparePassword(password: string): Buffer {
  const raw = Buffer.from(password, "utf8");
  if (/^[\x00-\x7f]*$/.test(password)) return raw;
  const mapped = password.replace(NON_ASCII_SPACE, " ").replace(MAPPED_TO_NOTHING, "");
  if (mapped.length === 0 || PROHIBITED.test(mapped) || !bidiAllowed(mapped)) return raw;
  return Buffer.from(mapped.normalize("NFKC"), "utf8");
}

/** RFC 3454 §6: with any R/AL character, no L character, and R/AL first and last. */
function bidiAllowed(text: string): boolean {
  if (!RAND_AL_CHAR.test(text)) return true;
  const chars = Array.from(text);
  return !LEFT_TO_RIGHT_CHAR.test(text) && RAND_AL_CHAR.test(chars[0]) && RAND_AL_CHAR.test(chars[chars.length - 1]);
}
