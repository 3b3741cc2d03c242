// The edge's pure parts: framing, the message walker, identity and option parsing, the admission
// checks' order, allow lists and PgBouncer's config quoting. No sockets.
import assert from "node:assert/strict";
import { admissionRefusal, clientIdentity, upstreamParameters, wantsReplication, type AdmissionRequest } from "../src/edge/admission";
import { compileAllowList } from "../src/edge/allow-list";
import { RouteConfigError, routeLine, type EngineRoute } from "../src/edge/pgbouncer-config";
import { errorResponse, FrameReader, MessageWalker, ProtocolError, startupMessage, type StartupPacket } from "../src/edge/protocol";
import type { EdgePool, EdgeTenant } from "../src/edge/snapshot";

function startupPacket(code: number, body: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(body.length + 8, 0);
  head.writeUInt32BE(code, 4);
  return Buffer.concat([head, body]);
}

function readStartup(bytes: Buffer): StartupPacket | undefined {
  const reader = new FrameReader(20_000);
  reader.push(bytes);
  return reader.takeStartupPacket();
}

function message(type: string, bodyLength: number): Buffer {
  const m = Buffer.alloc(bodyLength + 5, 0x61);
  m.write(type, 0, "latin1");
  m.writeUInt32BE(bodyLength + 4, 1);
  return m;
}

describe("edge units", () => {
  describe("startup packets", () => {
    it("reads a StartupMessage's parameters", () => {
      const packet = readStartup(startupMessage(new Map([["user", "app.acme"], ["database", "sales"], ["application_name", "psql"]])));
      assert.deepEqual(packet, {
        kind: "startup",
        minor: 0,
        parameters: new Map([["user", "app.acme"], ["database", "sales"], ["application_name", "psql"]]),
        protocolOptions: [],
      });
    });

    it("waits for the rest of a packet split across chunks", () => {
      const whole = startupMessage(new Map([["user", "u.t"]]));
      const reader = new FrameReader(20_000);
      reader.push(whole.subarray(0, 3));
      assert.equal(reader.takeStartupPacket(), undefined);
      reader.push(whole.subarray(3, 10));
      assert.equal(reader.takeStartupPacket(), undefined);
      reader.push(whole.subarray(10));
      assert.equal(reader.takeStartupPacket()?.kind, "startup");
    });

    it("reads SSLRequest, GSSENCRequest and CancelRequest", () => {
      assert.deepEqual(readStartup(startupPacket(80877103)), { kind: "ssl" });
      assert.deepEqual(readStartup(startupPacket(80877104)), { kind: "gssenc" });
      const key = Buffer.alloc(8);
      key.writeUInt32BE(1234, 0);
      key.writeUInt32BE(0xfffffff0, 4);
      assert.deepEqual(readStartup(startupPacket(80877102, key)), { kind: "cancel", key: { processId: 1234, secretKey: 0xfffffff0 } });
    });

    it("reads a newer 3.x minor version and _pq_ options, for NegotiateProtocolVersion", () => {
      const packet = readStartup(startupPacket((3 << 16) | 2, Buffer.from("user\0u.t\0_pq_.x\0y\0\0")));
      assert.deepEqual(packet, { kind: "startup", minor: 2, parameters: new Map([["user", "u.t"]]), protocolOptions: ["_pq_.x"] });
    });

    const refused: Array<[string, Buffer, string]> = [
      ["a packet over 10,000 bytes", startupPacket(196608, Buffer.alloc(10_000, 0x61)), "08P01"],
      ["a length under 8", Buffer.from([0, 0, 0, 4, 0, 0, 0, 0]), "08P01"],
      ["a length of 2^32 - 1", Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 3, 0, 0]), "08P01"],
      ["protocol 2.0", startupPacket(2 << 16, Buffer.from("user\0u\0\0")), "0A000"],
      ["protocol 4.0", startupPacket(4 << 16, Buffer.from("user\0u\0\0")), "0A000"],
      ["parameters without the final terminator", startupPacket(196608, Buffer.from("user\0u")), "08P01"],
      ["a name without a value", startupPacket(196608, Buffer.from("user\0")), "08P01"],
      ["bytes after the terminator", startupPacket(196608, Buffer.from("user\0u\0\0junk")), "08P01"],
      ["an SSLRequest with a body", startupPacket(80877103, Buffer.from("xx")), "08P01"],
      ["a short CancelRequest", startupPacket(80877102, Buffer.alloc(4)), "08P01"],
    ];
    for (const [name, bytes, code] of refused) {
      it(`refuses ${name} (${code})`, () => {
        assert.throws(() => readStartup(bytes), (err: unknown) => err instanceof ProtocolError && err.code === code);
      });
    }

    it("refuses more buffered bytes than its limit", () => {
      const reader = new FrameReader(100);
      assert.throws(() => reader.push(Buffer.alloc(101)), ProtocolError);
    });
  });

  describe("ErrorResponse", () => {
    it("frames severity, SQLSTATE, message and detail as Postgres does", () => {
      const bytes = errorResponse({ severity: "FATAL", code: "28P01", message: 'password authentication failed for user "a.b"', detail: "d" });
      assert.equal(String.fromCharCode(bytes[0]), "E");
      assert.equal(bytes.readUInt32BE(1), bytes.length - 1);
      assert.deepEqual(bytes.subarray(5).toString("utf8").split("\0"), ["SFATAL", "VFATAL", "C28P01", 'Mpassword authentication failed for user "a.b"', "Dd", "", ""]);
    });
  });

  describe("the message walker", () => {
    const stream = Buffer.concat([message("T", 30), message("D", 0), message("D", 200), message("C", 9), message("Z", 1)]);
    const boundaries = [35, 40, 245, 259, 265];

    it("finds every boundary whatever the chunking", () => {
      for (let split = 1; split < stream.length; split++) {
        const walker = new MessageWalker();
        const seen: number[] = [];
        let offset = 0;
        for (const chunk of [stream.subarray(0, split), stream.subarray(split)]) {
          let at = 0;
          while (at < chunk.length) {
            at += walker.advance(chunk.subarray(at), true);
            if (walker.atBoundary) seen.push(offset + at);
          }
          offset += chunk.length;
        }
        assert.deepEqual([...new Set(seen)], boundaries, `split at ${split}`);
        assert.equal(walker.lastType, "Z".charCodeAt(0));
      }
    });

    it("walks byte by byte", () => {
      const walker = new MessageWalker();
      for (let i = 0; i < stream.length; i++) {
        walker.advance(stream.subarray(i, i + 1));
        assert.equal(walker.atBoundary, boundaries.includes(i + 1), `after byte ${i + 1}`);
      }
    });

    it("refuses a length under 4", () => {
      assert.throws(() => new MessageWalker().advance(Buffer.from([0x44, 0, 0, 0, 3])), ProtocolError);
    });
  });

  describe("client identity", () => {
    const cases: Array<[string, string | undefined, { user: string; tenant: string } | undefined]> = [
      ["app.acme", undefined, { user: "app", tenant: "acme" }],
      ["a.b.acme", undefined, { user: "a.b", tenant: "acme" }],
      ["app", undefined, undefined],
      [".acme", undefined, undefined],
      ["app.", undefined, undefined],
      ["a.b", "reference=acme", { user: "a.b", tenant: "acme" }],
      ["app", "-c reference=acme", { user: "app", tenant: "acme" }],
      ["app", "--reference=acme", { user: "app", tenant: "acme" }],
      ["app", "-creference=acme", { user: "app", tenant: "acme" }],
      ["app", "-c search_path=x   reference=acme", { user: "app", tenant: "acme" }],
      ["app.other", "-c search_path=x", { user: "app", tenant: "other" }],
      ["app.other", "reference=", undefined],
    ];
    for (const [user, options, expected] of cases) {
      it(`user ${JSON.stringify(user)}${options ? ` with options ${JSON.stringify(options)}` : ""} is ${expected ? `${expected.user} of ${expected.tenant}` : "no tenant"}`, () => {
        assert.deepEqual(clientIdentity(user, options), expected);
      });
    }

    it("asks for replication only with a true-ish value", () => {
      assert.equal(wantsReplication(undefined), false);
      assert.equal(wantsReplication("false"), false);
      assert.equal(wantsReplication("OFF"), false);
      assert.equal(wantsReplication("database"), true);
      assert.equal(wantsReplication("true"), true);
    });

    it("passes on only the parameters PgBouncer tracks, and names the route", () => {
      const client = new Map([
        ["user", "app.acme"],
        ["database", "sales"],
        ["application_name", "psql"],
        ["client_encoding", "UTF8"],
        ["DateStyle", "ISO"],
        ["options", "-c work_mem=1GB"],
        ["extra_float_digits", "3"],
        ["search_path", "evil"],
      ]);
      assert.deepEqual(
        upstreamParameters("qod_edge", "route_tx", client),
        new Map([
          ["user", "qod_edge"],
          ["database", "route_tx"],
          ["application_name", "psql"],
          ["client_encoding", "UTF8"],
          ["DateStyle", "ISO"],
        ]),
      );
    });
  });

  describe("admission checks, in order", () => {
    const pool = { name: "bi", database: "sales", disabled: false, maxClients: 2 } as EdgePool;
    const tenant = { name: "acme", disabled: false, enforceSsl: false, allowList: [], users: new Map() } as EdgeTenant;
    const base: AdmissionRequest = {
      tenant,
      allowList: compileAllowList([]),
      pool,
      openSessions: 0,
      secure: false,
      address: "127.0.0.1",
      database: "sales",
      now: 1_000,
    };
    // Each case breaks every check from its own on, so only the order can pick the answer.
    const everything: Partial<AdmissionRequest> = {
      tenant: { ...tenant, ban: { reason: "abuse" }, disabled: true, enforceSsl: true },
      pool: { ...pool, disabled: true },
      allowList: compileAllowList(["10.0.0.0/8"]),
      openSessions: 2,
      database: "other",
    };
    const cases: Array<[string, Partial<AdmissionRequest>, string | undefined, RegExp | undefined]> = [
      ["all well", {}, undefined, undefined],
      ["banned first", everything, "28000", /^\(EBANNED\) tenant is banned: abuse$/],
      ["an expired ban no longer counts", { ...everything, tenant: { ...everything.tenant!, ban: { reason: "x", until: 999 } } }, "28000", /^tenant "acme" is disabled$/],
      ["a ban holds at exactly its end", { tenant: { ...tenant, ban: { reason: "x", until: 1_000 } } }, "28000", /EBANNED/],
      ["tenant disabled", { ...everything, tenant: { ...tenant, disabled: true, enforceSsl: true } }, "28000", /^tenant "acme" is disabled$/],
      ["pool disabled", { ...everything, tenant: { ...tenant, enforceSsl: true } }, "55000", /^pool "bi" of tenant "acme" is disabled$/],
      ["TLS required", { ...everything, tenant: { ...tenant, enforceSsl: true }, pool }, "28000", /^SSL connection is required$/],
      ["address not allowed", { ...everything, tenant, pool, secure: true }, "28000", /^address "127.0.0.1" is not allowed to connect to tenant "acme"$/],
      ["client limit", { ...everything, tenant, pool, allowList: compileAllowList(["127.0.0.0/8"]) }, "53300", /^too many clients for pool "bi" of tenant "acme"/],
      ["database", { database: "other" }, "3D000", /^database "other" does not exist$/],
    ];
    for (const [name, change, code, message] of cases) {
      it(`${name}${code ? ` → ${code}` : ""}`, () => {
        const refusal = admissionRefusal({ ...base, ...change });
        assert.equal(refusal?.code, code);
        if (message) assert.match(refusal!.message, message);
      });
    }
  });

  describe("allow lists", () => {
    it("allows everyone when empty", () => assert.equal(compileAllowList([]).allows("203.0.113.9"), true));

    it("matches IPv4 and IPv6 CIDRs, IPv4-mapped addresses and bare addresses", () => {
      const list = compileAllowList(["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]);
      assert.equal(list.allows("10.1.2.3"), true);
      assert.equal(list.allows("::ffff:10.1.2.3"), true);
      assert.equal(list.allows("11.0.0.1"), false);
      assert.equal(list.allows("2001:db8::1"), true);
      assert.equal(list.allows("2001:db9::1"), false);
      assert.equal(list.allows("192.0.2.7"), true);
      assert.equal(list.allows("192.0.2.8"), false);
      assert.equal(list.allows(""), false);
    });

    it("lets entries that are not CIDRs allow nothing, and reports them", () => {
      const list = compileAllowList(["0.0.0.0", "10.0.0.0/33", "nonsense", "10.0.0.0/8/1", "::/-1"]);
      assert.deepEqual(list.invalid, ["10.0.0.0/33", "nonsense", "10.0.0.0/8/1", "::/-1"]);
      assert.equal(list.allows("0.0.0.0"), true);
      assert.equal(list.allows("10.0.0.1"), false);
    });
  });

  describe("PgBouncer route lines", () => {
    const route = (upstream: Partial<EngineRoute["upstream"]>): EngineRoute => ({
      name: "q0123456789abcdef01234567_tx",
      mode: "transaction",
      poolSize: 3,
      upstream: { host: "db.example", port: 5432, database: "sales", user: "app", password: "pw", ...upstream },
    });

    it("quotes every value, doubling quotes", () => {
      assert.equal(
        routeLine(route({ password: "it's a ;# \"test\"", user: "o'neil" })),
        "q0123456789abcdef01234567_tx = host='db.example' port=5432 dbname='sales' user='o''neil' password='it''s a ;# \"test\"' pool_size=3 pool_mode=transaction",
      );
    });

    it("leaves out an empty password (PgBouncer refuses empty values)", () => {
      assert.doesNotMatch(routeLine(route({ password: "" })), /password=/);
    });

    for (const [name, upstream] of [
      ["a line break in the password", { password: "a\nb" }],
      ["a NUL in the user", { user: "a\0b" }],
      ["an empty host", { host: "" }],
      ["a user over 127 bytes", { user: "u".repeat(128) }],
      ["a database over 63 bytes", { database: "d".repeat(64) }],
      ["port 0", { port: 0 }],
    ] as const) {
      it(`refuses ${name}, without quoting the value`, () => {
        assert.throws(
          () => routeLine(route(upstream)),
          (err: unknown) => err instanceof RouteConfigError && !err.message.includes("a\nb") && !err.message.includes("u".repeat(128)),
        );
      });
    }
  });
});
