// The OpenAPI document of the JSON /api: valid OpenAPI 3.1, exactly the transcoder's routes, the
// JSON the transcoder really prints (names and types, checked against the running service and
// against a test API with every type and rule shape), committed fresh in envoy/openapi.json.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fromJson, toBinary, type FileRegistry, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { Validator } from "@seriousme/openapi-schema-validator";
import Ajv2020, { type ValidateFunction } from "ajv/dist/2020";
import { buildOpenApi, packageVersion, renderOpenApi } from "../src/gateway/openapi";
import { buildRoutes, gatewayServices, type Route } from "../src/gateway/routes";
import { createTranscoder, loadRegistry, type Transcoder } from "../src/gateway/transcode";
import { readDescriptor } from "../src/server/reflection";
import { startTestApp, type TestApp } from "./helpers/app";
import { uniquePrefix } from "./helpers/postgres";
import { REPO_ROOT } from "./helpers/process";
import { rest, type RestResponse } from "./helpers/rest";

// Shapes of the parts of the document the tests read.
interface Operation {
  operationId: string;
  tags: string[];
  summary: string;
  description?: string;
  deprecated?: boolean;
  parameters?: { name: string; in: string; required?: boolean; description?: string; schema: JsonObject }[];
  requestBody?: { content: { "application/json": { schema: JsonObject } } };
  responses: Record<string, { $ref?: string; content?: { "application/json": { schema: JsonObject } } }>;
  security: Record<string, string[]>[];
}
interface Document {
  info: { version: string };
  tags: { name: string; description?: string }[];
  paths: Record<string, Record<string, Operation>>;
  components: {
    schemas: Record<string, { type?: string; description?: string; properties?: Record<string, JsonObject>; enum?: string[] }>;
    responses: Record<string, { description: string; content: { "application/json": { schema: JsonObject } } }>;
    securitySchemes: Record<string, JsonObject>;
  };
}
const asDocument = (json: JsonObject) => json as unknown as Document;

const operations = (doc: Document) =>
  Object.entries(doc.paths).flatMap(([p, item]) => Object.entries(item).map(([method, operation]) => ({ key: `${method.toUpperCase()} ${p}`, operation })));

/** The OpenAPI path of a route template, written out independently of the builder. */
const openApiPath = (template: string) => template.replace(/\{([^}=]+)(=[^}]*)?\}/g, "{$1}");

/** The operation a route is documented by. */
function operationOf(doc: Document, route: Route): Operation {
  const operation = doc.paths[openApiPath(route.template)]?.[route.httpMethod.toLowerCase()];
  assert.ok(operation, `${route.httpMethod} ${route.template} is not in the document`);
  return operation;
}

async function expectValidOpenApi(doc: JsonObject): Promise<void> {
  const validator = new Validator();
  const result = await validator.validate(structuredClone(doc));
  assert.deepEqual(result.errors, undefined, JSON.stringify(result.errors, null, 2));
  assert.equal(result.valid, true);
  assert.equal(validator.version, "3.1");
}

const DOCUMENT_ID = "https://qod.test/openapi.json";
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * Compiles a document's schemas with Ajv in strict JSON Schema 2020-12 mode (the dialect of
 * OpenAPI 3.1), its components as one schema's $defs, and returns a compiler for the
 * document's inline schemas (which refer to the components).
 */
function schemaCompiler(doc: Document): (schema: unknown) => ValidateFunction {
  const absolute = (value: unknown): JsonObject => JSON.parse(JSON.stringify(value).replaceAll('"#/components/schemas/', `"${DOCUMENT_ID}#/$defs/`));
  const ajv = new Ajv2020({ strict: true, allowUnionTypes: true, allErrors: true });
  for (const format of ["int32", "uint32", "int64", "uint64", "float", "double", "byte"]) ajv.addFormat(format, true);
  ajv.addFormat("date-time", RFC3339);
  ajv.addSchema({ $id: DOCUMENT_ID, $defs: absolute(doc.components.schemas) });
  return (schema) => ajv.compile(absolute(schema));
}

/** Asserts a JSON value is valid for a schema of the document. */
function expectMatches(compile: (schema: unknown) => ValidateFunction, schema: unknown, value: unknown, what: string): void {
  const validate = compile(schema);
  assert.ok(validate(value), `${what} does not match its schema: ${JSON.stringify(validate.errors)}\n${JSON.stringify(value)}`);
}

/** The properties of a component schema. */
function propertiesOf(doc: Document, name: string): string[] {
  const properties = doc.components.schemas[name]?.properties;
  assert.ok(properties, `no schema ${name}`);
  return Object.keys(properties).sort();
}

const responseSchema = (operation: Operation, status = "200") => operation.responses[status].content!["application/json"].schema;

describe("OpenAPI document", () => {
  const registry = loadRegistry(readDescriptor());
  const { routes } = buildRoutes(registry, gatewayServices(registry));
  const json = buildOpenApi(registry, routes);
  const doc = asDocument(json);

  it("is valid OpenAPI 3.1 for @seriousme/openapi-schema-validator, with no error", async () => {
    await expectValidOpenApi(json);
  });

  it("has schemas that Ajv compiles in strict JSON Schema 2020-12 mode", () => {
    const compile = schemaCompiler(doc);
    for (const name of Object.keys(doc.components.schemas)) compile({ $ref: `#/components/schemas/${name}` });
  });

  it("describes every route of the transcoder's table, and nothing else", () => {
    const documented = operations(doc).map((o) => o.key).sort();
    const served = routes.map((r) => `${r.httpMethod} ${openApiPath(r.template)}`).sort();
    assert.deepEqual(documented, served);
    for (const route of routes) {
      const operation = operationOf(doc, route);
      // An RPC's further bindings (DeletePool's /api/pool/stop) are numbered from 2.
      assert.match(operation.operationId ?? "", new RegExp(`^${route.method.parent.name}_${route.method.name}(_[2-9])?$`));
      assert.deepEqual(operation.tags, [route.method.parent.name]);
    }
    const ids = operations(doc).map((o) => o.operation.operationId);
    assert.equal(new Set(ids).size, ids.length, "operation ids are unique");
  });

  it("has one tag per service, with the service's comment, and the package's version", () => {
    assert.deepEqual(doc.tags.map((t) => t.name).sort(), ["AuthService", "DatabaseService", "PoolService", "SupavisorService", "TenantService"]);
    const tenants = doc.tags.find((t) => t.name === "TenantService")!;
    assert.match(tenants.description ?? "", /^TenantService manages tenants: isolation boundaries that own databases and pools and pick\nthe auth provider/);
    assert.equal(doc.info.version, packageVersion());
    assert.equal(doc.info.version, JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")).version);
  });

  it("carries the proto comments on operations, schemas, properties and parameters", () => {
    const create = doc.paths["/api/tenant/create"].post;
    assert.equal(create.summary, "CreateTenant");
    assert.match(create.description ?? "", /^Creates a tenant\. Superusers only\./);
    assert.equal(doc.components.schemas["qod.v1.Tenant"].description, "A tenant as the API shows it.");
    assert.equal(doc.components.schemas["qod.v1.Tenant"].properties!.displayName.description, "Human-readable name, unique across tenants; defaults to the name.");
    const list = doc.paths["/api/tenant/list"].get;
    assert.deepEqual(
      list.parameters!.map((p) => [p.name, p.in, p.schema.type]),
      [
        ["pageSize", "query", "integer"],
        ["pageToken", "query", "string"],
      ],
    );
    assert.match(list.parameters![0].description ?? "", /^Maximum number of tenants to return/);
    assert.match(doc.components.schemas["qod.v1.DatabaseStatus"].description ?? "", /- `READY`: The database and its catalog exist and may be used\./);
  });

  it("asks every operation but the public ones for X-API-Key or a Bearer JWT", () => {
    assert.deepEqual(doc.components.securitySchemes, {
      ApiKey: { type: "apiKey", in: "header", name: "X-API-Key", description: doc.components.securitySchemes.ApiKey.description! },
      Bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT", description: doc.components.securitySchemes.Bearer.description! },
    });
    const open = ["POST /api/auth/login", "POST /api/auth/oidc/exchange", "GET /api/health"];
    for (const { key, operation } of operations(doc)) {
      assert.deepEqual(operation.security, open.includes(key) ? [] : [{ ApiKey: [] }, { Bearer: [] }], key);
    }
  });

  it("lists SPEC §4's error statuses on each operation, all with the one google.rpc.Status body", () => {
    for (const { key, operation } of operations(doc)) {
      const statuses = Object.keys(operation.responses);
      const isPublic = operation.security.length === 0;
      // A public method's 401 is its own refusal of the credentials in its body (a wrong password).
      assert.deepEqual(statuses, ["200", "400", "401", ...(isPublic ? [] : ["403"]), "404", "409", "413", "429", "500", "503", "504"], key);
      assert.equal(operation.responses["401"].$ref, `#/components/responses/${isPublic ? "CredentialsRefused" : "Unauthenticated"}`, key);
    }
    for (const [name, response] of Object.entries(doc.components.responses)) {
      assert.deepEqual(response.content, { "application/json": { schema: { $ref: "#/components/schemas/google.rpc.Status" } } }, name);
    }
    assert.deepEqual(propertiesOf(doc, "google.rpc.Status"), ["code", "details", "message"]);
  });

  it("is the same text on every build, with components in name order", () => {
    assert.equal(renderOpenApi(buildOpenApi(registry, buildRoutes(registry, gatewayServices(registry)).routes)), renderOpenApi(json));
    const names = Object.keys(doc.components.schemas);
    assert.deepEqual(names, [...names].sort());
  });

  it("is committed fresh: envoy/openapi.json is what tools/openapi.ts writes now (run npm run gen)", () => {
    const work = mkdtempSync(path.join(tmpdir(), "qod-openapi-"));
    try {
      const output = path.join(work, "openapi.json");
      execFileSync(process.execPath, ["--import", "tsx", path.join(REPO_ROOT, "tools", "openapi.ts"), path.join(REPO_ROOT, "envoy", "descriptor.binpb"), output], { cwd: REPO_ROOT });
      const fresh = readFileSync(output, "utf8");
      assert.equal(fresh, renderOpenApi(json), "the script writes what the gateway serves");
      assert.equal(readFileSync(path.join(REPO_ROOT, "envoy", "openapi.json"), "utf8"), fresh, "envoy/openapi.json is stale: run npm run gen");
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  it("refuses a route OpenAPI 3.1 cannot hold (a custom HTTP method)", () => {
    const custom = { ...routes[0], httpMethod: "SEARCH" };
    assert.throws(() => buildOpenApi(registry, [custom]), /OpenAPI 3\.1 has no SEARCH operations/);
  });

  describe("against the running service", () => {
    let app: TestApp;
    const p = uniquePrefix("oa");
    const compile = schemaCompiler(doc);

    before(async () => {
      app = await startTestApp();
    });
    after(async () => {
      await app.stop();
    });

    /** Calls a route and checks the answer against the route's documented schema for its status. */
    async function call(method: string, template: string, options: Parameters<typeof rest>[3] = {}, target = template): Promise<RestResponse> {
      const route = routes.find((r) => r.httpMethod === method && r.template === template);
      assert.ok(route, `no route ${method} ${template}`);
      const res = await rest(app, method, target, options);
      const operation = operationOf(doc, route);
      const documented = operation.responses[String(res.status)];
      assert.ok(documented, `${method} ${template} answered ${res.status}, which its operation does not list: ${res.text}`);
      const schema = documented.$ref ? doc.components.responses[documented.$ref.split("/").pop()!].content["application/json"].schema : documented.content!["application/json"].schema;
      expectMatches(compile, schema, res.json, `${method} ${template} ${res.status}`);
      return res;
    }

    it("names every field as the transcoder prints it, with the documented types", async () => {
      const name = `${p}_acme`;
      const created = await call("POST", "/api/tenant/create", { body: { name, authConfig: {} } });
      assert.equal(created.status, 200, created.text);
      // Tenant: every field is printed (primitives always, timestamps set on create; no ban, so no bannedUntil).
      assert.deepEqual(Object.keys(created.json as object).sort(), propertiesOf(doc, "qod.v1.Tenant").filter((k) => k !== "bannedUntil"));

      const listed = await call("GET", "/api/tenant/list", {}, "/api/tenant/list?pageSize=1000");
      assert.deepEqual(Object.keys(listed.json as object).sort(), propertiesOf(doc, "qod.v1.ListTenantsResponse"));
      await call("GET", "/api/tenant/get", {}, `/api/tenant/get?name=${name}`);

      const login = await call("POST", "/api/auth/login", { auth: {}, body: { username: "admin", password: "admin" } });
      assert.equal(login.status, 200, login.text);
      assert.deepEqual(Object.keys(login.json as object).sort(), propertiesOf(doc, "qod.v1.LoginResponse"));
      const whoami = await call("GET", "/api/auth/whoami");
      assert.deepEqual(Object.keys(whoami.json as object).sort(), propertiesOf(doc, "qod.v1.WhoAmIResponse"));
      await call("GET", "/api/database/list", {}, `/api/database/list?tenant=${name}`);
      await call("GET", "/api/database/metastore-defaults");
    });

    it("describes the error bodies as the gateway prints them (ErrorInfo, BadRequest)", async () => {
      const missing = await call("GET", "/api/tenant/get", {}, `/api/tenant/get?name=${p}_missing`);
      assert.equal(missing.status, 404);
      const invalid = await call("POST", "/api/tenant/create", { body: { name: "Not A Name!" } });
      assert.equal(invalid.status, 400);
      const details = (invalid.json as { details: JsonObject[] }).details;
      assert.deepEqual(details.map((d) => d["@type"]).sort(), ["type.googleapis.com/google.rpc.BadRequest", "type.googleapis.com/google.rpc.ErrorInfo"]);
      const info = details.find((d) => d["@type"] === "type.googleapis.com/google.rpc.ErrorInfo")!;
      assert.deepEqual(Object.keys(info).filter((k) => k !== "@type").sort(), propertiesOf(doc, "google.rpc.ErrorInfo"));
      assert.deepEqual(Object.keys(invalid.json as object).sort(), propertiesOf(doc, "google.rpc.Status"));
      // An unknown query parameter and an undecodable body: the gateway's own replies, same schema.
      assert.equal((await call("GET", "/api/tenant/list", {}, "/api/tenant/list?nope=1")).status, 400);
      assert.equal((await call("POST", "/api/tenant/create", { raw: "{" })).status, 400);
    });

    it("lists the answers of the credential checks: 401 without one, and Login's 401 for a wrong password", async () => {
      assert.equal((await call("GET", "/api/tenant/list", { auth: {} })).status, 401);
      assert.equal((await call("POST", "/api/auth/login", { auth: {}, body: { username: "admin", password: "wrong" } })).status, 401);
    });
  });

  describe("of a test API with every type and rule shape (test/fixtures/openapi)", () => {
    const SERVICE = "shelf.v1.ShelfService";
    let fixtureRegistry: FileRegistry;
    let shelf: { routes: readonly Route[]; json: JsonObject; doc: Document; compile: (schema: unknown) => ValidateFunction; transcoder: Transcoder };
    /** The fixture's descriptor set, as `npm run gen` builds ours. */
    const buildFixture = () => {
      const work = mkdtempSync(path.join(tmpdir(), "qod-openapi-fixture-"));
      try {
        cpSync(path.join(REPO_ROOT, "test", "fixtures", "openapi"), path.join(work, "fixture"), { recursive: true });
        cpSync(path.join(REPO_ROOT, "third_party", "googleapis"), path.join(work, "googleapis"), { recursive: true });
        writeFileSync(path.join(work, "buf.yaml"), "version: v2\nmodules:\n  - path: fixture\n  - path: googleapis\n");
        execFileSync(path.join(REPO_ROOT, "node_modules", ".bin", "buf"), ["build", "--as-file-descriptor-set", "-o", "shelf.binpb"], { cwd: work });
        return loadRegistry(readFileSync(path.join(work, "shelf.binpb")));
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    };
    const route = (grpcMethod: string, n = 0) => shelf.routes.filter((r) => r.method.name === grpcMethod)[n];

    before(() => {
      fixtureRegistry = buildFixture();
      const table = buildRoutes(fixtureRegistry, [fixtureRegistry.getService(SERVICE)!]);
      const json = buildOpenApi(fixtureRegistry, table.routes, { version: "9.9.9", publicMethods: new Set([`/${SERVICE}/GetBook`]) });
      shelf = { routes: table.routes, json, doc: asDocument(json), compile: schemaCompiler(asDocument(json)), transcoder: createTranscoder(fixtureRegistry) };
    });

    it("is valid OpenAPI 3.1, and its schemas compile in strict JSON Schema 2020-12 mode", async () => {
      await expectValidOpenApi(shelf.json);
      for (const name of Object.keys(shelf.doc.components.schemas)) shelf.compile({ $ref: `#/components/schemas/${name}` });
      assert.equal(asDocument(shelf.json).info.version, "9.9.9");
    });

    it("turns path templates into OpenAPI paths, one operation per binding", () => {
      assert.deepEqual(operations(shelf.doc).map((o) => [o.key, o.operation.operationId]), [
        ["GET /v1/{name}", "ShelfService_GetBook"],
        ["GET /v1/books/{name}", "ShelfService_GetBook_2"],
        ["PATCH /v2/{book.name}", "ShelfService_UpdateBook"],
        ["POST /v1/{name}:archive", "ShelfService_ArchiveBook"],
        ["DELETE /v1/shelves/{shelf}/books/{book_id}", "ShelfService_DeleteBook"],
        ["PUT /api/shelves/{external_id}", "ShelfService_PutShelf"],
        ["POST /v1/report", "ShelfService_Report"],
      ]);
      const [name] = operationOf(shelf.doc, route("GetBook")).parameters!;
      assert.deepEqual(name, { name: "name", in: "path", required: true, description: "The book's resource name.", schema: { type: "string", pattern: "^shelves/[^/]+/books/[^/]+$" } });
      assert.deepEqual(operationOf(shelf.doc, route("GetBook", 1)).parameters![0].schema, { type: "string" });
      assert.equal(operationOf(shelf.doc, route("Report")).deprecated, true);
    });

    it("offers every other bindable field of a bodiless rule as a query parameter, by its JSON name", () => {
      const query = (operation: Operation) => operation.parameters!.filter((p) => p.in === "query").map((p) => p.name);
      // Not `name` (the path's), `labels` (a map) or `filter` (a Struct); nested `page` by field path.
      assert.deepEqual(query(operationOf(shelf.doc, route("GetBook"))), ["page.size", "page.token", "tags", "verbose", "genre", "asOf", "readMask", "minRating"]);
      assert.deepEqual(query(operationOf(shelf.doc, route("DeleteBook"))), ["force"]);
      assert.deepEqual(query(operationOf(shelf.doc, route("Report"))), ["period"]);
      // `body: "book"`: the other fields stay in the query; `body: "*"`: none.
      assert.deepEqual(query(operationOf(shelf.doc, route("UpdateBook"))), ["updateMask"]);
      assert.deepEqual(query(operationOf(shelf.doc, route("ArchiveBook"))), []);
      assert.equal(operationOf(shelf.doc, route("GetBook")).parameters!.find((p) => p.name === "tags")!.schema.type, "array");
    });

    it("takes the body the rule names and answers the response_body field", () => {
      const body = (r: Route) => operationOf(shelf.doc, r).requestBody?.content["application/json"].schema;
      assert.deepEqual(body(route("UpdateBook")), { $ref: "#/components/schemas/shelf.v1.Book" });
      assert.deepEqual(body(route("ArchiveBook")), { $ref: "#/components/schemas/shelf.v1.ArchiveBookRequest" });
      assert.equal(body(route("GetBook")), undefined);
      assert.equal(body(route("DeleteBook")), undefined);
      assert.equal(body(route("Report")), undefined);
      assert.deepEqual(responseSchema(operationOf(shelf.doc, route("GetBook"))), { $ref: "#/components/schemas/shelf.v1.Book" });
      assert.deepEqual(responseSchema(operationOf(shelf.doc, route("PutShelf"))), { $ref: "#/components/schemas/shelf.v1.PutShelfResponse" });
    });

    it("maps types as proto3 JSON prints them", () => {
      const book = shelf.doc.components.schemas["shelf.v1.Book"].properties!;
      const schema = (key: string) => {
        const { description: _, deprecated: __, ...rest } = book[key];
        return rest;
      };
      assert.deepEqual(schema("pageCount"), { type: "string", format: "int64", pattern: "^-?[0-9]+$" });
      assert.deepEqual(schema("copiesSold"), { type: "string", format: "uint64", pattern: "^[0-9]+$" });
      assert.deepEqual(schema("edition"), { type: "integer", format: "uint32", minimum: 0, maximum: 4294967295 });
      assert.deepEqual(schema("cover"), { type: "string", format: "byte", contentEncoding: "base64" });
      assert.deepEqual(schema("publishTime"), { type: "string", format: "date-time" });
      assert.deepEqual(schema("genre"), { $ref: "#/components/schemas/shelf.v1.Genre" });
      assert.deepEqual(shelf.doc.components.schemas["shelf.v1.Genre"].enum, ["GENRE_UNSPECIFIED", "GENRE_NOVEL", "GENRE_POETRY"]);
      assert.deepEqual(schema("salesByRegion"), { type: "object", additionalProperties: { type: "string", format: "int64", pattern: "^-?[0-9]+$" } });
      assert.deepEqual(schema("sequels"), { type: "object", additionalProperties: { $ref: "#/components/schemas/shelf.v1.Book" }, propertyNames: { pattern: "^-?[0-9]+$" } });
      assert.deepEqual(schema("subtitle"), { type: ["string", "null"] });
      assert.deepEqual(schema("isbn"), { type: ["string", "null"] });
      assert.deepEqual(schema("weightGrams"), { type: ["string", "null"], format: "int64", pattern: "^-?[0-9]+$" });
      assert.deepEqual(schema("attributes"), { type: "object", additionalProperties: true });
      assert.deepEqual(schema("extra"), {});
      assert.equal(book.legacyCode.deprecated, true);
      assert.equal(book.sequels.description, "Later books by number: a message that contains itself.");
      // An explicit json_name (Supavisor's snake_case) is kept.
      assert.deepEqual(propertiesOf(shelf.doc, "shelf.v1.Shelf"), ["display_name", "external_id", "max_books"]);
      assert.ok(shelf.doc.components.schemas["shelf.v1.Author.Place"], "nested messages are components too");
    });

    it("matches what the transcoder prints for a book with every field set", () => {
      const Book = fixtureRegistry.getMessage("shelf.v1.Book")!;
      const GetBookResponse = fixtureRegistry.getMessage("shelf.v1.GetBookResponse")!;
      const full: JsonValue = {
        name: "shelves/s1/books/b1",
        title: "T",
        tags: ["a"],
        pageCount: "9007199254740993",
        copiesSold: "18446744073709551615",
        edition: 4294967295,
        rating: 4.5,
        weight: 1.25,
        cover: "AAEC",
        inPrint: true,
        shelfPosition: -3,
        catalogNumber: "7",
        genre: "GENRE_NOVEL",
        genres: ["GENRE_POETRY"],
        publishTime: "2024-01-02T03:04:05.678Z",
        readTime: "3.5s",
        salesByRegion: { eu: "12" },
        sequels: { "2": { title: "Two" } },
        flags: { true: "yes" },
        subtitle: "S",
        isbn: "978",
        weightGrams: "500",
        signed: false,
        attributes: { a: [1, { b: null }] },
        extra: "anything",
        notes: [1, "two"],
        author: { displayName: "A", birthplace: { name: "P" } },
        ebookUrl: "https://example.test/b1",
        legacyCode: "L",
      };
      const bytes = toBinary(GetBookResponse, fromJson(GetBookResponse, { book: full, readTime: "2024-01-02T03:04:05Z" }, { registry: fixtureRegistry }));
      const printed = JSON.parse(shelf.transcoder.response(route("GetBook"), bytes)) as JsonObject;
      expectMatches(shelf.compile, responseSchema(operationOf(shelf.doc, route("GetBook"))), printed, "the printed book");
      // Every key printed is documented; every documented key but the other oneof member is printed.
      assert.deepEqual(Object.keys(printed).sort(), propertiesOf(shelf.doc, "shelf.v1.Book").filter((k) => k !== "hardcoverPages"));
      assert.equal(Book.field.ebookUrl.oneof?.name, "format");
      // Each printed value is valid for its property alone (a type error cannot hide in a sibling).
      for (const [key, value] of Object.entries(printed)) expectMatches(shelf.compile, shelf.doc.components.schemas["shelf.v1.Book"].properties![key], value, key);

      const Shelf = fixtureRegistry.getMessage("shelf.v1.PutShelfResponse")!;
      const shelfBytes = toBinary(Shelf, fromJson(Shelf, { data: { external_id: "s1", display_name: "One", max_books: "10" } }));
      const printedShelf = JSON.parse(shelf.transcoder.response(route("PutShelf"), shelfBytes)) as { data: JsonObject };
      expectMatches(shelf.compile, responseSchema(operationOf(shelf.doc, route("PutShelf"))), printedShelf, "the printed shelf");
      assert.deepEqual(Object.keys(printedShelf.data).sort(), propertiesOf(shelf.doc, "shelf.v1.Shelf"));
    });

    it("documents null where the transcoder takes it (optional fields, wrappers)", () => {
      const body = Buffer.from(JSON.stringify({ name: "shelves/s/books/b", subtitle: null, isbn: null, weightGrams: null, signed: null }));
      assert.doesNotThrow(() => shelf.transcoder.request(route("UpdateBook"), [], body));
      const book = shelf.doc.components.schemas["shelf.v1.Book"].properties!;
      for (const key of ["subtitle", "isbn", "weightGrams", "signed"]) expectMatches(shelf.compile, book[key], null, key);
      assert.ok(!shelf.compile(book.title)(null), "a field without presence is not documented as nullable");
    });
  });
});
