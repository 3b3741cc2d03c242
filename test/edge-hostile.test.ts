// Hostile and broken clients: oversized and malformed packets, garbage, silence, slowloris, SASL
// abuse, floods of half-open handshakes. None may crash or stall the edge, and nothing it logs may
// hold a password or a verifier.
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import pino from "pino";
import { startupMessage } from "../src/edge/protocol";
import { generateSelfSignedCertificate } from "../src/edge/tls";
import {
  createUpstreamDatabase,
  dropUpstreamDatabase,
  edgeUrl,
  makePool,
  makeTenant,
  pgClient,
  psql,
  requireTools,
  startEdge,
  type RunningEdge,
  type UpstreamDatabase,
} from "./helpers/edge";
import { waitFor } from "./helpers/wait";
import { uniquePrefix } from "./helpers/postgres";

const PASSWORD = "hostile-Password-1";
const HANDSHAKE_TIMEOUT_MS = 700;

interface RawReply {
  bytes: Buffer;
  /** The first ErrorResponse's SQLSTATE and message, if one came. */
  error?: { code: string; message: string };
  /** Milliseconds from connect to close. */
  closedAfterMs: number;
}

/** Connects, sends `chunks` (with `gapMs` between them), and collects what comes back until the edge closes. */
function raw(port: number, chunks: Buffer[], options: { gapMs?: number; onData?: (socket: Socket, data: Buffer) => void } = {}): Promise<RawReply> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect({ host: "127.0.0.1", port });
    let bytes = Buffer.alloc(0);
    socket.on("error", () => undefined);
    socket.on("data", (data: Buffer) => {
      bytes = Buffer.concat([bytes, data]);
      options.onData?.(socket, data);
    });
    socket.on("close", () => resolve({ bytes, error: firstError(bytes), closedAfterMs: Date.now() - started }));
    socket.on("connect", () => {
      void (async () => {
        for (const chunk of chunks) {
          if (socket.destroyed) return;
          socket.write(chunk);
          if (options.gapMs) await new Promise((r) => setTimeout(r, options.gapMs));
        }
      })();
    });
  });
}

function firstError(bytes: Buffer): RawReply["error"] {
  // One-byte answers to SSLRequest/GSSENCRequest (`N`) may come first.
  let at = 0;
  while (bytes[at] === 0x4e && bytes[at + 1] !== undefined && bytes[at + 1] !== 0) at++;
  while (at + 5 <= bytes.length) {
    const type = String.fromCharCode(bytes[at]);
    const length = bytes.readUInt32BE(at + 1);
    if (type === "E") {
      const fields = bytes.subarray(at + 5, at + 1 + length).toString("utf8").split("\0");
      const field = (c: string) => fields.find((f) => f.startsWith(c))?.slice(1) ?? "";
      return { code: field("C"), message: field("M") };
    }
    at += 1 + length;
  }
  return undefined;
}

function packet(code: number, body = Buffer.alloc(0), length = body.length + 8): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(length, 0);
  head.writeUInt32BE(code, 4);
  return Buffer.concat([head, body]);
}

const SSL_REQUEST = packet(80877103);

function saslMessage(body: Buffer, type = "p", length = body.length + 4): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, "latin1");
  head.writeUInt32BE(length, 1);
  return Buffer.concat([head, body]);
}

describe("edge under hostile input", () => {
  let running: RunningEdge;
  let db: UpstreamDatabase;
  const tenant = uniquePrefix("hos");
  const logLines: string[] = [];
  const user = `app.${tenant}`;
  const startup = () => startupMessage(new Map([["user", user], ["database", "x"]]));
  /** Sends a startup and, once asked for SASL, `afterSasl`. */
  const saslAbuse = (afterSasl: Buffer) =>
    raw(running.transactionPort, [startup()], {
      onData: (socket, data) => {
        if (data[0] === 0x52 && data.readInt32BE(5) === 10) socket.write(afterSasl);
      },
    });

  before(async function () {
    requireTools();
    db = await createUpstreamDatabase();
    const logger = pino({ level: "trace" }, { write: (line: string) => void logLines.push(line) });
    running = await startEdge({
      logger,
      handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
      tls: await generateSelfSignedCertificate({ hosts: ["127.0.0.1"] }),
    });
    await running.edge.apply([makeTenant(tenant, [makePool(tenant, "app", PASSWORD, db)])]);
  });
  after(async () => {
    await running?.edge.close();
    if (db) await dropUpstreamDatabase(db);
  });
  afterEach(async () => {
    await waitFor("every connection to be gone", () => running.edge.health().connections === 0);
    assert.ok(running.edge.health().ok);
  });

  const refusals: Array<[string, () => Buffer[], string, RegExp, number?]> = [
    ["a startup packet over 10 kB", () => [packet(196608, Buffer.alloc(10_001, 0x61))], "08P01", /invalid length of startup packet/],
    ["a startup packet that claims 1 GB", () => [packet(196608, Buffer.alloc(0), 1 << 30)], "08P01", /invalid length of startup packet/],
    ["an HTTP request", () => [Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n")], "08P01", /invalid length of startup packet/],
    ["protocol 2.0", () => [packet(2 << 16, Buffer.from("user\0u.t\0\0"))], "0A000", /unsupported frontend protocol 2\.0/],
    ["a startup packet without terminators", () => [packet(196608, Buffer.from("user\0u.t"))], "08P01", /invalid startup packet layout/],
    ["an SSLRequest with bytes after it in the same write", () => [Buffer.concat([SSL_REQUEST, startupMessage(new Map([["user", "a.b"]]))])], "08P01", /unencrypted data after SSL request/],
    ["a GSSENCRequest with bytes after it in the same write", () => [Buffer.concat([packet(80877104), packet(80877104)])], "08P01", /unencrypted data after GSSAPI encryption request/],
    ["a second GSSENCRequest", () => [packet(80877104), packet(80877104)], "08P01", /unexpected encryption request/, 100],
    ["a startup without a user", () => [startupMessage(new Map([["database", "x"]]))], "28000", /no PostgreSQL user name/],
  ];
  for (const [name, chunks, code, message, gapMs] of refusals) {
    it(`refuses ${name} with ${code} and closes`, async () => {
      const reply = await raw(running.transactionPort, chunks(), { gapMs });
      assert.equal(reply.error?.code, code, reply.bytes.toString("latin1"));
      assert.match(reply.error.message, message);
    });
  }

  it("closes on random bytes", async () => {
    const reply = await raw(running.transactionPort, [Buffer.from(Array.from({ length: 64 }, (_, i) => (i * 37 + 11) & 0xff))]);
    assert.ok(reply.closedAfterMs < HANDSHAKE_TIMEOUT_MS * 3);
  });

  it("times out a client that connects and sends nothing", async () => {
    const reply = await raw(running.transactionPort, []);
    assert.deepEqual(reply.error, { code: "08006", message: "canceling authentication due to timeout" });
    assert.ok(reply.closedAfterMs >= HANDSHAKE_TIMEOUT_MS - 50 && reply.closedAfterMs < HANDSHAKE_TIMEOUT_MS + 3_000, String(reply.closedAfterMs));
  });

  it("times out a slowloris that sends its startup a byte at a time", async () => {
    const bytes = startup();
    const reply = await raw(running.transactionPort, Array.from(bytes, (b) => Buffer.from([b])), { gapMs: 100 });
    assert.equal(reply.error?.code, "08006");
    assert.ok(reply.closedAfterMs < HANDSHAKE_TIMEOUT_MS + 3_000);
  });

  const saslCases: Array<[string, () => Buffer, string, RegExp]> = [
    ["a malformed SCRAM client-first", () => saslMessage(Buffer.concat([Buffer.from("SCRAM-SHA-256\0"), Buffer.from([0, 0, 0, 3]), Buffer.from("xyz")])), "08P01", /malformed SCRAM message/],
    ["a SASL length field that lies", () => saslMessage(Buffer.concat([Buffer.from("SCRAM-SHA-256\0"), Buffer.from([0, 0, 0, 99]), Buffer.from("n,,n=,r=a")])), "08P01", /malformed SASLInitialResponse/],
    ["another mechanism", () => saslMessage(Buffer.concat([Buffer.from("SCRAM-SHA-256-PLUS\0"), Buffer.from([0, 0, 0, 9]), Buffer.from("n,,n=,r=a")])), "08P01", /invalid SASL authentication mechanism/],
    ["a query instead of a SASL response", () => saslMessage(Buffer.from("select 1\0"), "Q"), "08P01", /expected SASL response/],
    ["a SASL message that claims 1 GB", () => saslMessage(Buffer.alloc(0), "p", 1 << 30), "08P01", /invalid message length/],
  ];
  for (const [name, message, code, pattern] of saslCases) {
    it(`refuses ${name} during SASL with ${code}`, async () => {
      const reply = await saslAbuse(message());
      assert.equal(reply.error?.code, code, JSON.stringify(reply.error));
      assert.match(reply.error.message, pattern);
    });
  }

  it("serves a real client while 300 half-open handshakes sit on the edge, then times them all out", async () => {
    const silent = Array.from({ length: 300 }, () => raw(running.transactionPort, [startup().subarray(0, 10)]));
    await waitFor("the half-open handshakes to arrive", () => running.edge.health().connections >= 300);
    const started = Date.now();
    const r = await psql(edgeUrl(running.transactionPort, user, db.database), PASSWORD, "select 1");
    assert.equal(r.stdout, "1", r.stderr);
    assert.ok(Date.now() - started < 5_000);
    const replies = await Promise.all(silent);
    assert.ok(replies.every((reply) => reply.error?.code === "08006"));
  });

  it("refuses connections past max connections with 53300", async () => {
    const small = await startEdge({ maxConnections: 3, handshakeTimeoutMs: 2_000 });
    try {
      const holders = Array.from({ length: 3 }, () => raw(small.transactionPort, []));
      await waitFor("three connections", () => small.edge.health().connections === 3);
      const reply = await raw(small.transactionPort, [startup()]);
      assert.deepEqual(reply.error, { code: "53300", message: "sorry, too many clients already" });
      await Promise.all(holders);
    } finally {
      await small.edge.close();
    }
  });

  it("never logs a password, a verifier or an upstream password", async () => {
    await psql(edgeUrl(running.transactionPort, user, db.database), "wrong-password", "select 1");
    await psql(edgeUrl(running.transactionPort, `nobody.${tenant}`, db.database), PASSWORD, "select 1");
    const client = await pgClient(running.sessionPort, user, PASSWORD, db.database);
    await client.query("select 1");
    await client.end();
    const text = logLines.join("\n");
    assert.ok(text.length > 0, "the edge logged at trace level");
    for (const secret of [PASSWORD, "wrong-password", db.password, "SCRAM-SHA-256$"]) assert.ok(!text.includes(secret), `the log holds ${secret}`);
  });
});
