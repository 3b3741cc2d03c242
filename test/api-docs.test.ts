// The API's documentation on the JSON listener, over real HTTP: the OpenAPI document and Swagger
// UI answer without a credential, the static files have their types and cache headers, no path
// leaves swagger-ui-dist's files, and the rest of /api still reaches the transcoder. Also the
// plain-route table that puts these handlers before the transcoder.
import assert from "node:assert/strict";
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { readFileSync } from "node:fs";
import path from "node:path";
import { status } from "@grpc/grpc-js";
import { buildOpenApi } from "../src/gateway/openapi";
import { plainRouteTable, type PlainHandler } from "../src/gateway/plain-routes";
import { buildRoutes, gatewayServices } from "../src/gateway/routes";
import { loadRegistry } from "../src/gateway/transcode";
import { readDescriptor } from "../src/server/reflection";
import { startTestApp, type TestApp } from "./helpers/app";
import { REPO_ROOT } from "./helpers/process";
import { expectRestError, type RestResponse } from "./helpers/rest";

interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One request with the path sent byte for byte (fetch would resolve `..` and `%2e%2e` first). */
function raw(app: TestApp, method: string, target: string, headers: Record<string, string> = {}, body?: string): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port: app.httpPort, method, path: target, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.once("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.once("error", reject);
    });
    req.once("error", reject);
    req.end(body);
  });
}

/** The RestResponse shape of a raw response, for expectRestError. */
function asRest(res: RawResponse): RestResponse {
  const text = res.body.toString("utf8");
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: new Headers(Object.entries(res.headers).map(([k, v]) => [k, String(v)])), text, json };
}

const swaggerUiFile = (name: string) => readFileSync(path.join(REPO_ROOT, "node_modules", "swagger-ui-dist", name));

describe("API documentation on the JSON listener", () => {
  let app: TestApp;
  const registry = loadRegistry(readDescriptor());
  const routes = buildRoutes(registry, gatewayServices(registry));

  before(async () => {
    app = await startTestApp();
  });
  after(async () => {
    await app.stop();
  });

  for (const docPath of ["/api/openapi", "/openapi.json"]) {
    it(`serves the OpenAPI document at ${docPath} without a credential, with an ETag`, async () => {
      const res = await raw(app, "GET", docPath);
      assert.equal(res.status, 200);
      assert.equal(res.headers["content-type"], "application/json");
      assert.equal(res.headers["cache-control"], "no-cache");
      assert.equal(res.headers["x-content-type-options"], "nosniff");
      assert.deepEqual(JSON.parse(res.body.toString("utf8")), buildOpenApi(registry, routes.routes));
      assert.deepEqual(JSON.parse(res.body.toString("utf8")), JSON.parse(readFileSync(path.join(REPO_ROOT, "envoy", "openapi.json"), "utf8")));

      const etag = res.headers.etag!;
      assert.match(etag, /^"[A-Za-z0-9_-]+"$/);
      const again = await raw(app, "GET", `${docPath}?v=1`, { "if-none-match": `W/"x", ${etag}` });
      assert.equal(again.status, 304);
      assert.equal(again.body.length, 0);
      assert.equal(again.headers.etag, etag);
    });
  }

  it("answers HEAD like GET, without the body", async () => {
    for (const target of ["/api/openapi", "/swaggerui", "/swaggerui/swagger-ui.css"]) {
      const [get, head] = [await raw(app, "GET", target), await raw(app, "HEAD", target)];
      assert.equal(head.status, 200, target);
      assert.equal(head.body.length, 0, target);
      assert.equal(head.headers["content-length"], String(get.body.length), target);
      assert.equal(head.headers["content-type"], get.headers["content-type"], target);
      assert.equal(head.headers.etag, get.headers.etag, target);
    }
  });

  it("serves Swagger UI's page at /swaggerui, under a policy that keeps it to this origin", async () => {
    for (const target of ["/swaggerui", "/swaggerui/", "/swaggerui/index.html", "/swaggerui?x=1"]) {
      const res = await raw(app, "GET", target);
      assert.equal(res.status, 200, target);
      assert.equal(res.headers["content-type"], "text/html; charset=utf-8");
      assert.match(String(res.headers["content-security-policy"]), /default-src 'self'.*frame-ancestors 'none'/);
      assert.equal(res.headers["x-frame-options"], "DENY");
      assert.match(res.body.toString("utf8"), /<script src="\/swaggerui\/swagger-ui-bundle\.js"/);
    }
  });

  it("serves our initializer in place of the package's (our document, both schemes kept across reloads)", async () => {
    const res = await raw(app, "GET", "/swaggerui/swagger-initializer.js");
    assert.equal(res.status, 200);
    assert.equal(res.headers["content-type"], "text/javascript; charset=utf-8");
    const text = res.body.toString("utf8");
    assert.match(text, /url: "\/api\/openapi"/);
    assert.match(text, /persistAuthorization: true/);
    assert.match(text, /validatorUrl: null/);
    assert.doesNotMatch(text, /petstore/);
    assert.match(swaggerUiFile("swagger-initializer.js").toString("utf8"), /petstore/, "the package's own initializer is not the one served");
  });

  it("serves each file the page loads from swagger-ui-dist, with its type and cache headers", async () => {
    const page = (await raw(app, "GET", "/swaggerui")).body.toString("utf8");
    const files = [...page.matchAll(/(?:href|src)="\/swaggerui\/([^"]+)"/g)].map((m) => m[1]).filter((f) => f !== "swagger-initializer.js");
    assert.deepEqual(files.sort(), ["favicon-16x16.png", "favicon-32x32.png", "index.css", "swagger-ui-bundle.js", "swagger-ui.css"]);
    const types: Record<string, string> = { ".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".png": "image/png" };
    for (const file of files) {
      const res = await raw(app, "GET", `/swaggerui/${file}`);
      assert.equal(res.status, 200, file);
      assert.equal(res.headers["content-type"], types[path.extname(file)], file);
      assert.equal(res.headers["cache-control"], "public, max-age=3600", file);
      assert.equal(res.headers["x-content-type-options"], "nosniff", file);
      assert.ok(res.body.equals(swaggerUiFile(file)), `${file} is the package's file`);
      const again = await raw(app, "GET", `/swaggerui/${file}`, { "if-none-match": res.headers.etag! });
      assert.equal(again.status, 304, file);
    }
  });

  // Each must answer the gateway's 404 JSON, and nothing of the file it reaches for.
  const refused = [
    "/swaggerui/../package.json",
    "/swaggerui/../../package.json",
    "/swaggerui/..%2fpackage.json",
    "/swaggerui/..%2Fpackage.json",
    "/swaggerui/%2e%2e/package.json",
    "/swaggerui/%2e%2e%2fpackage.json",
    "/swaggerui/.%2e/.%2e/package.json",
    "/swaggerui/..%5cpackage.json",
    "/swaggerui/..\\package.json",
    "/swaggerui/%2fetc%2fpasswd",
    "/swaggerui//etc/passwd",
    "/swaggerui/package.json",
    "/swaggerui/README.md",
    "/swaggerui/swagger-ui.js.map",
    "/swaggerui/oauth2-redirect.html",
    "/swaggerui/.",
    "/swaggerui/..",
    "/swaggerui/swagger-ui.css%00.png",
    "/swaggerui/swagger-ui.css/",
    "/swaggerui/nope.js",
    "/swaggerui/node_modules",
    `/swaggerui/${"a".repeat(4000)}.js`,
  ];
  for (const target of refused) {
    it(`refuses ${target.length > 60 ? `${target.slice(0, 40)}…` : target}`, async () => {
      const res = await raw(app, "GET", target);
      expectRestError(asRest(res), 404, status.NOT_FOUND, "not_found");
      assert.doesNotMatch(res.body.toString("utf8"), /qod-control-plane|swagger-ui-dist|root:/);
    });
  }

  it("lists no directory", async () => {
    // The prefix itself is the page, never a listing of the package.
    const res = await raw(app, "GET", "/swaggerui/");
    assert.doesNotMatch(res.body.toString("utf8"), /package\.json|swagger-ui\.js\.map/);
  });

  it("leaves every other path under /api to the transcoder and its 404", async () => {
    for (const [method, target] of [
      ["GET", "/api/nope"],
      ["GET", "/api/openapi/x"],
      ["GET", "/api/openapi.json"],
      ["GET", "/api/%6fpenapi"],
      ["POST", "/api/openapi"],
      ["DELETE", "/swaggerui"],
      ["GET", "/swaggerui-x"],
    ] as const) {
      const res = await raw(app, method, target, { "content-type": "application/json" });
      const error = expectRestError(asRest(res), 404, status.NOT_FOUND, "not_found");
      assert.match(error.message, /^Could not resolve .* to a method\.$/, `${method} ${target}`);
    }
    // The transcoded routes answer as before: a credential is still required.
    expectRestError(asRest(await raw(app, "GET", "/api/tenant/list")), 401, status.UNAUTHENTICATED, "unauthenticated");
  });

  it("closes the connection of a request that came with a body it does not read", async () => {
    const res = await raw(app, "GET", "/api/openapi", { "content-type": "application/json" }, "x".repeat(10_000));
    assert.equal(res.status, 200);
    assert.equal(res.headers.connection, "close");
  });
});

describe("plain-route table", () => {
  const registry = loadRegistry(readDescriptor());
  const routes = buildRoutes(registry, gatewayServices(registry));
  const handler = (name: string): PlainHandler => Object.assign(() => undefined, { label: name });
  const label = (h: PlainHandler | undefined) => (h as (PlainHandler & { label: string }) | undefined)?.label;

  it("finds exact paths and the longest prefix, ignoring the query; GET also answers HEAD", () => {
    const table = plainRouteTable(
      [
        { method: "GET", path: "/livez", handler: handler("livez") },
        { method: "GET", path: "/docs/", prefix: true, handler: handler("docs") },
        { method: "GET", path: "/docs/deep/", prefix: true, handler: handler("deep") },
        { method: "POST", path: "/hook", handler: handler("hook") },
      ],
      routes,
    );
    assert.equal(label(table.find("GET", "/livez")), "livez");
    assert.equal(label(table.find("HEAD", "/livez?verbose")), "livez");
    assert.equal(label(table.find("GET", "/docs/a.css")), "docs");
    assert.equal(label(table.find("GET", "/docs/deep/b")), "deep");
    assert.equal(label(table.find("POST", "/hook")), "hook");
    assert.equal(table.find("HEAD", "/hook"), undefined);
    assert.equal(table.find("POST", "/livez"), undefined);
    assert.equal(table.find("GET", "/livez/"), undefined);
    assert.equal(table.find("GET", "/docs"), undefined);
  });

  it("refuses a path a transcoded route answers, exact or under a prefix", () => {
    assert.throws(() => plainRouteTable([{ method: "GET", path: "/api/tenant/list", handler: handler("x") }], routes), /a transcoded route answers GET there too/);
    assert.throws(() => plainRouteTable([{ method: "POST", path: "/api/tenant/", prefix: true, handler: handler("x") }], routes), /a transcoded route answers POST/);
    assert.throws(() => plainRouteTable([{ method: "GET", path: "/api/", prefix: true, handler: handler("x") }], routes), /a transcoded route answers GET/);
    // The same paths with a method no route has, or a prefix beside the routes, are free.
    assert.doesNotThrow(() => plainRouteTable([{ method: "PUT", path: "/api/tenant/list", handler: handler("x") }], routes));
    assert.doesNotThrow(() => plainRouteTable([{ method: "GET", path: "/api/status", handler: handler("x") }], routes));
    assert.doesNotThrow(() => plainRouteTable([{ method: "GET", path: "/api/tenant/list/x/", prefix: true, handler: handler("x") }], routes));
  });

  it("refuses a path bound twice, or one that is not a path", () => {
    const twice = [
      { method: "GET", path: "/livez", handler: handler("a") },
      { method: "GET", path: "/livez", handler: handler("b") },
    ];
    assert.throws(() => plainRouteTable(twice, routes), /bound twice/);
    assert.throws(() => plainRouteTable([{ method: "GET", path: "livez", handler: handler("a") }], routes), /starts with \//);
    assert.throws(() => plainRouteTable([{ method: "GET", path: "/livez?x", handler: handler("a") }], routes), /has no query/);
  });
});
