// The API's documentation on the JSON listener, open as Supavisor's is: the OpenAPI document at
// /api/openapi (Supavisor's path) and /openapi.json, and Swagger UI at /swaggerui, served from
// the swagger-ui-dist package (no CDN: it works offline) with our own page and initializer.
import { createHash } from "node:crypto";
import { lstat, readFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import path from "node:path";
import type { JsonObject } from "@bufbuild/protobuf";
import { LocalReply } from "./http-status";
import type { PlainRoute } from "./plain-routes";

export const OPENAPI_PATHS = ["/api/openapi", "/openapi.json"] as const;
export const SWAGGER_UI_PATH = "/swaggerui";
/** Swagger UI's files are served under this prefix. */
export const SWAGGER_UI_ASSETS = `${SWAGGER_UI_PATH}/`;

/** A response body with the headers it is always sent with. */
interface Asset {
  body: Buffer;
  etag: string;
  headers: Record<string, string>;
}

const SECURITY_HEADERS = { "x-content-type-options": "nosniff", "referrer-policy": "no-referrer" };

// Swagger UI needs inline styles and data: images, nothing else from outside this origin.
// "Try it out" calls this origin only; no page may frame this one (it holds credentials).
const PAGE_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "object-src 'none'",
].join("; ");

const PAGE = `<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>QOD control plane API</title>
    <link rel="stylesheet" href="${SWAGGER_UI_ASSETS}swagger-ui.css">
    <link rel="stylesheet" href="${SWAGGER_UI_ASSETS}index.css">
    <link rel="icon" type="image/png" href="${SWAGGER_UI_ASSETS}favicon-32x32.png" sizes="32x32">
    <link rel="icon" type="image/png" href="${SWAGGER_UI_ASSETS}favicon-16x16.png" sizes="16x16">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="${SWAGGER_UI_ASSETS}swagger-ui-bundle.js" charset="UTF-8"></script>
    <script src="${SWAGGER_UI_ASSETS}swagger-initializer.js" charset="UTF-8"></script>
  </body>
</html>
`;

// Replaces the package's swagger-initializer.js (which loads the petstore): our document, the
// Authorize dialog kept across reloads, and no call to the online validator.
const INITIALIZER = `window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: ${JSON.stringify(OPENAPI_PATHS[0])},
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
};
`;

/** The package's files that are served, by extension; anything else under the prefix is 404. */
const CONTENT_TYPES: Record<string, string> = {
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".png": "image/png",
};
// One path segment of plain characters: no `/`, no `%` escapes, no leading dot (so no `..`).
const ASSET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Our own responses may change with each release; the package's files change only with its version. */
const REVALIDATE = "no-cache";
const PACKAGE_FILE_CACHE = "public, max-age=3600";

function asset(body: Buffer | string, contentType: string, cacheControl: string, extra: Record<string, string> = {}): Asset {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body);
  const etag = `"${createHash("sha256").update(bytes).digest("base64url").slice(0, 27)}"`;
  return { body: bytes, etag, headers: { "content-type": contentType, "cache-control": cacheControl, ...SECURITY_HEADERS, ...extra } };
}

/** Whether If-None-Match names the asset's entity tag (weak or strong, or `*`). */
function notModified(req: IncomingMessage, etag: string): boolean {
  const header = req.headers["if-none-match"];
  if (!header) return false;
  return header.split(",").some((tag) => {
    const trimmed = tag.trim();
    return trimmed === "*" || trimmed.replace(/^W\//, "") === etag;
  });
}

function send(req: IncomingMessage, res: ServerResponse, { body, etag, headers }: Asset): void {
  // A request that came with a body is not read: its connection is closed rather than drained.
  const hasBody = req.headers["transfer-encoding"] !== undefined || Number(req.headers["content-length"] ?? 0) > 0;
  const connection = hasBody ? { connection: "close" } : {};
  if (notModified(req, etag)) {
    res.writeHead(304, { etag, "cache-control": headers["cache-control"], ...connection });
    res.end();
    return;
  }
  res.writeHead(200, { ...headers, ...connection, etag, "content-length": body.length });
  res.end(body); // Node writes no body for HEAD
}

/** swagger-ui-dist's directory, found through Node's resolution (as the service finds its other packages). */
function swaggerUiDirectory(): string {
  return path.dirname(require.resolve("swagger-ui-dist/package.json"));
}

/**
 * The package's files, each read on first request and kept (the few the page loads, a few MB).
 * Only regular files directly in the package's directory, with a served extension, are found.
 */
function packageFiles(directory: string): (name: string) => Promise<Asset | undefined> {
  const loaded = new Map<string, Promise<Asset | undefined>>();
  const load = async (name: string): Promise<Asset | undefined> => {
    const contentType = CONTENT_TYPES[path.extname(name)];
    if (!contentType || !ASSET_NAME.test(name)) return undefined;
    const file = path.join(directory, name);
    const stats = await lstat(file).catch(() => undefined);
    if (!stats?.isFile()) return undefined;
    return asset(await readFile(file), contentType, PACKAGE_FILE_CACHE);
  };
  return (name) => {
    let found = loaded.get(name);
    if (!found) {
      found = load(name);
      // Only files that exist are kept, so unknown names cannot grow the map.
      void found.then((a) => a || loaded.delete(name), () => loaded.delete(name));
      loaded.set(name, found);
    }
    return found;
  };
}

/** The documentation's routes for the gateway's plain-route table. */
export function apiDocsRoutes(document: JsonObject): PlainRoute[] {
  const openapi = asset(JSON.stringify(document), "application/json", REVALIDATE);
  const page = asset(PAGE, "text/html; charset=utf-8", REVALIDATE, { "content-security-policy": PAGE_POLICY, "x-frame-options": "DENY" });
  const initializer = asset(INITIALIZER, CONTENT_TYPES[".js"], REVALIDATE);
  const files = packageFiles(swaggerUiDirectory());
  const serve = (a: Asset) => (req: IncomingMessage, res: ServerResponse) => send(req, res, a);

  return [
    ...OPENAPI_PATHS.map((p) => ({ method: "GET", path: p, handler: serve(openapi) })),
    { method: "GET", path: SWAGGER_UI_PATH, handler: serve(page) },
    {
      method: "GET",
      path: SWAGGER_UI_ASSETS,
      prefix: true,
      async handler(req, res) {
        const name = (req.url ?? "").split("?", 1)[0].slice(SWAGGER_UI_ASSETS.length);
        if (name === "" || name === "index.html") return send(req, res, page);
        if (name === "swagger-initializer.js") return send(req, res, initializer);
        const file = await files(name);
        if (!file) throw new LocalReply(404, "Swagger UI has no such file.");
        send(req, res, file);
      },
    },
  ];
}
