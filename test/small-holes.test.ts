// The smaller holes of issue 11 (hole 8), each over the surface it was found on: what grpc-js
// answers itself (a malformed grpc-timeout, a broken gzip body), a REST client that goes away
// mid-body or sends too slowly, JSON errors that quoted the body, OIDC tenants without clientId
// and discovery failures, display names with control and bidi characters, usernames that differ
// only in case.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { connect as http2Connect, constants as h2 } from "node:http2";
import { connect as netConnect, type AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";
import { status } from "@grpc/grpc-js";
import { ErrorInfo } from "../gen/google/rpc/error_details";
import { Status } from "../gen/google/rpc/status";
import { ListTenantsRequest } from "../gen/qod/v1/tenant";
import { sql } from "../src/db/sql";
import { isReason } from "../src/errors";
import { createLogger } from "../src/logger";
import { startTestApp, TEST_API_KEY, type TestApp } from "./helpers/app";
import { expectError } from "./helpers/clients";
import { startTestIssuer, type TestIssuer } from "./helpers/issuer";
import { uniquePrefix } from "./helpers/postgres";
import { expectRestError, rest } from "./helpers/rest";
import { waitFor } from "./helpers/wait";

interface RawStatus {
  code: number;
  reason: string;
}

/** One gRPC call over a bare HTTP/2 stream, with the headers and the framed body given. */
function h2Call(port: number, headers: Record<string, string>, frame: Buffer): Promise<RawStatus> {
  return new Promise((resolve, reject) => {
    const session = http2Connect(`http://127.0.0.1:${port}`);
    session.on("error", reject);
    const stream = session.request({
      [h2.HTTP2_HEADER_METHOD]: "POST",
      [h2.HTTP2_HEADER_PATH]: "/qod.v1.TenantService/ListTenants",
      "content-type": "application/grpc",
      te: "trailers",
      "x-api-key": TEST_API_KEY,
      ...headers,
    });
    let last: Record<string, unknown> = {};
    const take = (h: Record<string, unknown>) => {
      if (h["grpc-status"] !== undefined) last = h;
    };
    stream.on("response", take);
    stream.on("trailers", take);
    stream.on("data", () => {});
    stream.on("close", () => {
      session.close();
      const details = last["grpc-status-details-bin"];
      const info = typeof details === "string" ? Status.decode(Buffer.from(details, "base64")).details.find((d) => d.typeUrl.endsWith("ErrorInfo")) : undefined;
      resolve({ code: Number(last["grpc-status"]), reason: info ? ErrorInfo.decode(info.value).reason : "" });
    });
    stream.end(frame);
  });
}

/** A gRPC length-prefixed message: the compressed flag, the length, the bytes. */
function framed(bytes: Buffer, compressed = false): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt8(compressed ? 1 : 0, 0);
  prefix.writeUInt32BE(bytes.length, 1);
  return Buffer.concat([prefix, bytes]);
}

describe("smaller holes (issue 11, hole 8)", () => {
  let app: TestApp;
  const p = uniquePrefix("sh");
  const lines: { level: number; msg: string; err?: { stack?: string } }[] = [];

  before(async () => {
    const logger = createLogger("info", { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) });
    app = await startTestApp({ logger, env: { QOD_HTTP_REQUEST_TIMEOUT_MS: "1500" } });
    await app.clients.tenants.createTenant({ name: p });
  });
  after(async () => {
    await app.stop();
  });

  describe("what grpc-js answers itself (gRPC)", () => {
    const empty = () => framed(Buffer.from(ListTenantsRequest.encode({ pageSize: 1, pageToken: "" }).finish()));

    it("answers a malformed grpc-timeout with INVALID_ARGUMENT and a reason, not INTERNAL", async () => {
      for (const timeout of ["abc", "10X", "S", ""]) {
        const answer = await h2Call(app.grpcPort, { "grpc-timeout": timeout }, empty());
        if (timeout === "") continue; // no header at all: a normal call
        assert.deepEqual(answer, { code: status.INVALID_ARGUMENT, reason: "invalid_argument" }, `grpc-timeout ${JSON.stringify(timeout)}`);
      }
    });

    it("answers a grpc-encoding: gzip body that does not decompress with INVALID_ARGUMENT, and decompresses a good one", async () => {
      const broken = framed(Buffer.from("this is not gzip"), true);
      assert.deepEqual(await h2Call(app.grpcPort, { "grpc-encoding": "gzip" }, broken), { code: status.INVALID_ARGUMENT, reason: "invalid_argument" });
      const good = framed(gzipSync(ListTenantsRequest.encode({ pageSize: 1, pageToken: "" }).finish()), true);
      assert.equal((await h2Call(app.grpcPort, { "grpc-encoding": "gzip" }, good)).code, status.OK);
    });

    it("gives a deadline that grpc-js enforces a reason too", async () => {
      const answer = await h2Call(app.grpcPort, { "grpc-timeout": "1n" }, empty());
      assert.equal(answer.code, status.DEADLINE_EXCEEDED);
      assert.ok(isReason(answer.reason), answer.reason);
    });
  });

  describe("the JSON listener (REST)", () => {
    it("logs a client that aborts mid-body as one info line without a stack", async () => {
      const before = lines.length;
      const socket = netConnect(app.httpPort, "127.0.0.1");
      await new Promise((resolve) => socket.once("connect", resolve));
      socket.write(`POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"username":"admin",`);
      await waitFor("the request to reach the server", () => true);
      socket.resetAndDestroy();
      const seen = await waitFor("the log line", () => lines.slice(before).find((l) => l.msg.includes("went away")));
      assert.equal(seen.level, 30);
      assert.equal(JSON.stringify(seen).includes("stack"), false);
      assert.deepEqual(lines.slice(before).filter((l) => l.level >= 50), []);
    });

    it("closes a request whose body is still not in after QOD_HTTP_REQUEST_TIMEOUT_MS, with 408", async () => {
      const socket = netConnect(app.httpPort, "127.0.0.1");
      let received = "";
      socket.on("data", (chunk: Buffer) => (received += chunk.toString()));
      const closed = new Promise<number>((resolve) => socket.once("close", () => resolve(Date.now())));
      await new Promise((resolve) => socket.once("connect", resolve));
      const started = Date.now();
      socket.write(`POST /api/tenant/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"name":`);
      const at = await closed;
      assert.ok(at - started < 5_000, `closed after ${at - started} ms`);
      assert.match(received, /^HTTP\/1\.1 408 /);
      assert.match(received, /"reason":"deadline_exceeded"/, "the google.rpc.Status JSON, as every error");
    });

    it("answers headers too large with 431 and the google.rpc.Status JSON", async () => {
      const res = await rest(app, "GET", `/api/tenant/get?name=${"x".repeat(80_000)}`);
      expectRestError(res, 431, status.INVALID_ARGUMENT, "invalid_header_size");
    });

    it("never quotes the body in a JSON error: syntax, early end, wrong types", async () => {
      const secret = "hunter2-the-password";
      const bodies = [
        `{"username":"admin","password":${secret}}`,
        `{"username":"admin","password":"${secret}"`,
        `{"username":"admin","password":{"p":"${secret}"}}`,
        `{"username":"admin","password":["${secret}"]}`,
        `{"username":"admin","${secret}":"x"}`.replace(secret, "passwd"),
        `["${secret}"]`,
      ];
      for (const raw of bodies) {
        const res = await rest(app, "POST", "/api/auth/login", { auth: {}, raw });
        expectRestError(res, 400, status.INVALID_ARGUMENT, "invalid_argument");
        assert.equal(res.text.includes("hunter2"), false, res.text);
      }
      const where = await rest(app, "POST", "/api/auth/login", { auth: {}, raw: `{"username": 5, "password": "${secret}"}` });
      assert.match((where.json as { message: string }).message, /qod\.v1\.LoginRequest\.username/);
    });
  });

  describe("OIDC tenants", () => {
    describe("without clientId", () => {
      let oidcApp: TestApp;
      let issuer: TestIssuer;
      const t = `${p}_noaud`;
      let iss: string;

      before(async () => {
        issuer = await startTestIssuer();
        oidcApp = await startTestApp({ env: { QOD_OIDC_ALLOW_INSECURE: "true" } });
        // Created as the seed shows it (no clientId), then pointed at the loopback issuer.
        await oidcApp.clients.tenants.createTenant({ name: t, authProvider: "keycloak", authConfig: { issuer: "https://kc.example.com/realms/x", realm: "x" } });
        await oidcApp.pool.query(sql.typeAlias("void")`UPDATE tenants SET auth_provider = 'db' WHERE name = ${t}`);
        await oidcApp.clients.auth.createUser({ tenant: t, username: "ann", password: "unused password" });
        iss = `${issuer.base}/realms/${t}`;
        await oidcApp.pool.query(sql.typeAlias("void")`
          UPDATE tenants SET auth_provider = 'keycloak', auth_config = ${sql.jsonb({ issuer: iss, realm: t })} WHERE name = ${t}`);
      });
      after(async () => {
        await oidcApp.stop();
        await issuer.close();
      });

      it("accepts no ID token, whatever its audience (it used to accept any), over gRPC and REST", async () => {
        for (const aud of ["some-other-application", undefined]) {
          const idToken = await issuer.sign(iss, { preferred_username: "ann", ...(aud ? { aud } : {}) });
          await expectError(oidcApp.clients.auth.exchangeOidcToken({ tenant: t, idToken }, {}), status.UNAUTHENTICATED, "unauthenticated");
          const res = await rest(oidcApp, "POST", "/api/auth/oidc/exchange", { auth: {}, body: { tenant: t, idToken } });
          expectRestError(res, 401, status.UNAUTHENTICATED, "unauthenticated");
        }
      });

      it("accepts a token for the clientId once the tenant names it", async () => {
        await oidcApp.pool.query(sql.typeAlias("void")`
          UPDATE tenants SET auth_config = ${sql.jsonb({ issuer: iss, realm: t, clientId: "qod" })} WHERE name = ${t}`);
        const idToken = await issuer.sign(iss, { preferred_username: "ann", aud: "qod" });
        assert.equal((await oidcApp.clients.auth.exchangeOidcToken({ tenant: t, idToken }, {})).username, "ann");
      });
    });

    describe("a failing issuer", () => {
      let oidcApp: TestApp;
      let issuer: Server;
      let discoveries = 0;
      const t = `${p}_oidc`;

      before(async () => {
        issuer = createServer((_req, res) => {
          discoveries++;
          res.writeHead(500).end();
        });
        await new Promise<void>((resolve) => issuer.listen(0, "127.0.0.1", resolve));
        oidcApp = await startTestApp({ env: { QOD_OIDC_ALLOW_INSECURE: "true" } });
        await oidcApp.clients.tenants.createTenant({ name: t });
        const base = `http://127.0.0.1:${(issuer.address() as AddressInfo).port}`;
        await oidcApp.pool.query(sql.typeAlias("void")`
          UPDATE tenants SET auth_provider = 'keycloak', auth_config = ${sql.jsonb({ issuer: `${base}/realms/${t}`, realm: t, clientId: "qod" })} WHERE name = ${t}`);
      });
      after(async () => {
        await oidcApp.stop();
        issuer.close();
      });

      it("is asked for its discovery document once, then answered from memory for a while", async () => {
        for (let i = 0; i < 5; i++) {
          await expectError(oidcApp.clients.auth.exchangeOidcToken({ tenant: t, idToken: "a.b.c" }, {}), status.UNAUTHENTICATED, "unauthenticated");
        }
        assert.equal(discoveries, 1);
      });
    });
  });

  describe("display names", () => {
    const bad = ["a\u0007b", "tab\there", "line\nbreak", "esc\u001b[31m", "del\u007f", "c1\u0085", "rtl\u202eevil", "iso\u2066x", "mark\u200fx", "lrm\u200ex"];
    for (const displayName of bad) {
      const label = displayName.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
      it(`refuses "${label}" (gRPC and REST)`, async () => {
        await expectError(app.clients.tenants.createTenant({ name: `${p}_dn`, displayName }), status.INVALID_ARGUMENT, "invalid_display_name");
        expectRestError(await rest(app, "POST", "/api/tenant/create", { body: { name: `${p}_dn`, displayName } }), 400, status.INVALID_ARGUMENT, "invalid_display_name");
      });
    }
    it("accepts letters of any script, emoji and punctuation", async () => {
      const created = await app.clients.tenants.createTenant({ name: `${p}_ok`, displayName: "Ünïcode — שלום 🚀 (ok)" });
      assert.equal(created.displayName, "Ünïcode — שלום 🚀 (ok)");
    });
  });

  describe("usernames", () => {
    it("are unique in a realm whatever their case, and log in whatever the case given (gRPC and REST)", async () => {
      await app.clients.auth.createUser({ tenant: p, username: "Ann", password: "ann's password" });
      await expectError(app.clients.auth.createUser({ tenant: p, username: "ann", password: "another password" }), status.ALREADY_EXISTS, "exists");
      expectRestError(await rest(app, "POST", "/api/user/create", { body: { tenant: p, username: "ANN", password: "another password" } }), 409, status.ALREADY_EXISTS, "exists");
      assert.equal((await app.clients.auth.login({ tenant: p, username: "aNN", password: "ann's password" }, {})).username, "Ann");
      const res = await rest(app, "POST", "/api/auth/login", { auth: {}, body: { tenant: p, username: "ann", password: "ann's password" } });
      assert.equal(res.status, 200, res.text);
    });
  });
});
