// Pure tests of the gateway's routing and transcoding (no server): path templates, variable and
// query bindings, body weaving and printing, against a small library API built in the test.
import assert from "node:assert/strict";
import { create, createFileRegistry, fromBinary, fromJson, toBinary, type DescMessage, type FileRegistry, type JsonObject, type JsonValue, type Registry } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { httpStatusFromGrpc, LocalReply, localReplyBody } from "../src/gateway/http-status";
import { buildRoutes, parseTemplate, urlUnescape, type RouteTable } from "../src/gateway/routes";
import { createTranscoder, loadRegistry, type Transcoder } from "../src/gateway/transcode";
import { readDescriptor } from "../src/server/reflection";

const field = (name: string, jsonName: string, number: number, type: string, extra: JsonObject = {}) => ({
  name,
  jsonName,
  number,
  type: `TYPE_${type}`,
  label: "LABEL_OPTIONAL",
  ...extra,
});
const repeated = { label: "LABEL_REPEATED" };
const http = (rule: JsonObject) => ({ "[google.api.http]": rule });

/** A library API with the rule shapes our own protos do not use (variables, verbs, field bodies). */
function libraryRegistry(base: FileRegistry): Registry {
  const file = fromJson(
    FileDescriptorProtoSchema,
    {
      name: "test/v1/library.proto",
      package: "test.v1",
      syntax: "proto3",
      // status.proto and error_details.proto: what a failed call's body is printed with.
      dependency: ["google/api/annotations.proto", "google/protobuf/timestamp.proto", "google/rpc/status.proto", "google/rpc/error_details.proto"],
      enumType: [{ name: "Kind", value: [{ name: "KIND_UNSPECIFIED", number: 0 }, { name: "KIND_NOVEL", number: 1 }] }],
      messageType: [
        { name: "Page", field: [field("size", "size", 1, "INT32"), field("token", "token", 2, "STRING")] },
        {
          name: "Book",
          field: [
            field("name", "name", 1, "STRING"),
            field("title", "title", 2, "STRING"),
            field("tags", "tags", 3, "STRING", repeated),
            field("page_count", "pageCount", 4, "INT64"),
            field("kind", "kind", 5, "ENUM", { typeName: ".test.v1.Kind" }),
            field("create_time", "createTime", 6, "MESSAGE", { typeName: ".google.protobuf.Timestamp" }),
          ],
        },
        {
          name: "GetBookRequest",
          field: [
            field("name", "name", 1, "STRING"),
            field("page", "page", 2, "MESSAGE", { typeName: ".test.v1.Page" }),
            field("tags", "tags", 3, "STRING", repeated),
            field("verbose", "verbose", 4, "BOOL"),
            field("kind", "kind", 5, "ENUM", { typeName: ".test.v1.Kind" }),
            field("page_size", "pageSize", 6, "INT32"),
          ],
        },
        { name: "GetBookResponse", field: [field("book", "book", 1, "MESSAGE", { typeName: ".test.v1.Book" })] },
        { name: "UpdateBookRequest", field: [field("book", "book", 1, "MESSAGE", { typeName: ".test.v1.Book" })] },
      ],
      service: [
        {
          name: "LibraryService",
          method: [
            {
              name: "GetBook",
              inputType: ".test.v1.GetBookRequest",
              outputType: ".test.v1.GetBookResponse",
              options: http({ get: "/v1/{name=shelves/*/books/*}", responseBody: "book", additionalBindings: [{ get: "/v1/books/{name}" }] }),
            },
            { name: "UpdateBook", inputType: ".test.v1.UpdateBookRequest", outputType: ".test.v1.Book", options: http({ patch: "/v1/{book.name=shelves/*/books/*}", body: "book" }) },
            { name: "ArchiveBook", inputType: ".test.v1.GetBookRequest", outputType: ".test.v1.Book", options: http({ post: "/v1/{name=shelves/*/books/*}:archive", body: "*" }) },
            { name: "Browse", inputType: ".test.v1.GetBookRequest", outputType: ".test.v1.Book", options: http({ get: "/v1/{name=**}" }) },
            { name: "Search", inputType: ".test.v1.GetBookRequest", outputType: ".test.v1.Book", options: http({ custom: { kind: "SEARCH", path: "/v1/books" } }) },
          ],
        },
      ],
    },
    { registry: base },
  );
  return createFileRegistry(file, (name) => base.getFile(name));
}

describe("gateway routing and transcoding", () => {
  const base = loadRegistry(readDescriptor());
  const registry = libraryRegistry(base);
  const library = registry.getService("test.v1.LibraryService")!;
  const table: RouteTable = buildRoutes(registry, [library]);
  const transcoder: Transcoder = createTranscoder(registry);
  const message = (name: string) => registry.getMessage(name) as DescMessage;

  const match = (method: string, target: string) => {
    const found = table.match(method, target);
    assert.ok(found, `${method} ${target} matched nothing`);
    return found;
  };
  const rpcOf = (method: string, target: string) => table.match(method, target)?.route.method.name;
  /** The request message a call transcodes to. */
  const decoded = (method: string, target: string, body = "") => {
    const { route, bindings } = match(method, target);
    const bytes = transcoder.request(route, bindings, Buffer.from(body));
    return fromBinary(route.method.input, bytes) as unknown as Record<string, unknown>;
  };
  const rejects = (fn: () => unknown, status: number, message: RegExp) =>
    assert.throws(fn, (err: unknown) => err instanceof LocalReply && err.status === status && message.test(err.message));

  describe("path templates (google/api/http.proto grammar)", () => {
    const valid: [string, unknown][] = [
      ["/api/tenant/create", { segments: ["api", "tenant", "create"], variables: [], verb: "" }],
      ["/v1/books/{name}", { segments: ["v1", "books", "*"], variables: [{ fieldPath: ["name"], start: 2, end: 3 }], verb: "" }],
      ["/v1/{name=shelves/*/books/*}", { segments: ["v1", "shelves", "*", "books", "*"], variables: [{ fieldPath: ["name"], start: 1, end: 5 }], verb: "" }],
      ["/v1/{book.name=shelves/*}:archive", { segments: ["v1", "shelves", "*"], variables: [{ fieldPath: ["book", "name"], start: 1, end: 3 }], verb: "archive" }],
      ["/v1/{path=**}", { segments: ["v1", "**"], variables: [{ fieldPath: ["path"], start: 1, end: -1 }], verb: "" }],
    ];
    for (const [template, expected] of valid) {
      it(`parses ${template}`, () => {
        const parsed = parseTemplate(template);
        const segments = parsed.segments.map((s) => (s.kind === "literal" ? s.value : s.kind));
        assert.deepEqual({ ...parsed, segments }, expected);
      });
    }
    for (const template of ["api/x", "/a/{b", "/a/**/c", "/a//b", "/a/", "/a/{b-c}", "/a:", "/a/b{c}"]) {
      it(`rejects ${template}`, () => assert.throws(() => parseTemplate(template), /invalid path template/));
    }
  });

  describe("matching", () => {
    it("binds a multi-segment variable, keeping reserved characters escaped", () => {
      const { bindings } = match("GET", "/v1/shelves/s%201/books/a%2Fb");
      assert.deepEqual(bindings.map((b) => [b.fields.map((f) => f.name), b.value]), [[["name"], "shelves/s 1/books/a%2Fb"]]);
    });
    it("fully unescapes a one-segment variable, and serves additional_bindings", () => {
      assert.equal(match("GET", "/v1/books/a%2Fb%20c").bindings[0]?.value, "a/b c");
      assert.equal(rpcOf("GET", "/v1/books/x"), "GetBook");
    });
    it("ignores trailing slashes, as Envoy does", () => {
      assert.equal(rpcOf("GET", "/v1/shelves/s/books/b/"), "GetBook");
    });
    it("prefers literal segments over * over **", () => {
      assert.equal(rpcOf("GET", "/v1/shelves/s/books/b"), "GetBook");
      assert.equal(rpcOf("GET", "/v1/shelves/s/books/b/c"), "Browse");
      assert.equal(match("GET", "/v1/a/b%2Fc/d").bindings[0]?.value, "a/b%2Fc/d");
    });
    it("matches a custom verb and a custom HTTP method", () => {
      assert.equal(rpcOf("POST", "/v1/shelves/s/books/b:archive"), "ArchiveBook");
      assert.equal(rpcOf("POST", "/v1/shelves/s/books/b"), undefined);
      assert.equal(rpcOf("SEARCH", "/v1/books"), "Search");
    });
    it("matches nothing for an unknown path or another HTTP method", () => {
      assert.equal(rpcOf("GET", "/v2/books/x"), undefined);
      assert.equal(rpcOf("DELETE", "/v1/books/x"), undefined);
    });
    it("splits off only registered verbs (match_unregistered_custom_verb is off)", () => {
      assert.equal(match("GET", "/v1/a:draft").bindings[0]?.value, "a:draft");
      assert.equal(rpcOf("GET", "/v1/a:archive"), undefined);
    });
  });

  describe("query parameters", () => {
    it("bind nested (dotted), repeated, bool, enum and int32 fields, by proto or JSON name", () => {
      const request = decoded("GET", "/v1/books/b?page.size=10&page.token=t&tags=a&tags=b&verbose=true&kind=KIND_NOVEL&page_size=3");
      const page = request.page as { size: number; token: string };
      assert.deepEqual([page.size, page.token], [10, "t"]);
      assert.deepEqual(request.tags, ["a", "b"]);
      assert.equal(request.verbose, true);
      assert.equal(request.kind, 1);
      assert.equal(request.pageSize, 3);
      assert.deepEqual(decoded("GET", "/v1/books/b?pageSize=4&kind=1"), { ...decoded("GET", "/v1/books/b"), pageSize: 4, kind: 1 });
    });
    it("decode %XX but keep + (Envoy leaves query_param_unescape_plus off)", () => {
      assert.deepEqual(decoded("GET", "/v1/books/b?tags=a+b&tags=c%20d%2Be").tags, ["a+b", "c d+e"]);
    });
    it("ignore parameters without a name or without =", () => {
      assert.deepEqual(decoded("GET", "/v1/books/b?flag&=x&tags=y").tags, ["y"]);
    });
    it("answer 400 for a parameter naming no field (reject_unknown_query_parameters)", () => {
      rejects(() => table.match("GET", "/v1/books/b?bogus=1"), 400, /^Could not find field "bogus" in the type "test.v1.GetBookRequest"\.$/);
      rejects(() => table.match("GET", "/v1/books/b?page.bogus=1"), 400, /in the type "test.v1.Page"/);
      rejects(() => table.match("GET", "/v1/books/b?name.x=1"), 400, /non-leaf field "name"/);
    });
    it("answer 400 for a value of the wrong type", () => {
      rejects(() => decoded("GET", "/v1/books/b?pageSize=ten"), 400, /page_size/);
      rejects(() => decoded("GET", "/v1/books/b?verbose=maybe"), 400, /verbose/);
    });
  });

  describe("request bodies", () => {
    it("puts a field body (`body: \"book\"`) in its field, beside the path variable", () => {
      const request = decoded("PATCH", "/v1/shelves/s/books/b", '{"title":"T","pageCount":"7"}');
      const book = request.book as { name: string; title: string; pageCount: bigint };
      assert.deepEqual([book.name, book.title, book.pageCount], ["shelves/s/books/b", "T", 7n]);
    });
    it("lets the body win over a binding of a singular field, and collects both for a repeated one", () => {
      const request = decoded("POST", "/v1/shelves/s/books/b:archive?tags=q", '{"name":"from-body","tags":["x"]}');
      assert.equal(request.name, "from-body");
      assert.deepEqual(request.tags, ["x", "q"]);
    });
    it("accepts proto field names in the body, and an empty body as {}", () => {
      assert.equal(decoded("POST", "/v1/shelves/s/books/b:archive", '{"page_size":2}').pageSize, 2);
      assert.equal(decoded("POST", "/v1/shelves/s/books/b:archive").name, "shelves/s/books/b");
    });
    it("parses a body sent to a rule without one into the request, as Envoy does", () => {
      assert.equal(decoded("GET", "/v1/books/b", '{"verbose":true}').verbose, true);
    });
    const bad: [string, Buffer, RegExp][] = [
      ["undecodable JSON", Buffer.from("{bad"), /invalid JSON body/],
      ["a wrong field type", Buffer.from('{"verbose":"yes"}'), /verbose/],
      ["an unknown field", Buffer.from('{"nope":1}'), /"nope" is unknown/],
      ["a non-object", Buffer.from("[1]"), /GetBookRequest/],
      ["invalid UTF-8", Buffer.from([0x7b, 0xff, 0x7d]), /UTF-8/],
    ];
    for (const [label, body, message] of bad) {
      it(`answers 400 for ${label}`, () => {
        const { route, bindings } = match("POST", "/v1/shelves/s/books/b:archive");
        rejects(() => transcoder.request(route, bindings, body), 400, message);
      });
    }
  });

  describe("responses", () => {
    const Book = message("test.v1.Book");
    const response = create(message("test.v1.GetBookResponse"), {
      book: create(Book, { name: "b", pageCount: 12n, kind: 1, createTime: { seconds: 1700000000n, nanos: 5_000_000 } }),
    });
    it("prints the response_body field only (for additional bindings too), with Envoy's print options", () => {
      const { route } = match("GET", "/v1/books/b");
      const json = JSON.parse(transcoder.response(route, toBinary(route.method.output, response))) as JsonValue;
      assert.deepEqual(json, { name: "b", title: "", tags: [], pageCount: "12", kind: "KIND_NOVEL", createTime: "2023-11-14T22:13:20.005Z" });
    });
    it("answers 502 for a response it cannot decode", () => {
      const { route } = match("GET", "/v1/books/b");
      rejects(() => transcoder.response(route, Buffer.from([0xff, 0xff])), 502, /could not be transcoded/);
    });
    it("renders a failed call's google.rpc.Status with @type first, or code and message without details", () => {
      const Status = base.getMessage("google.rpc.Status")!;
      const info = toBinary(base.getMessage("google.rpc.ErrorInfo")!, create(base.getMessage("google.rpc.ErrorInfo")!, { reason: "has_pools", domain: "qod.v1" }));
      const details = toBinary(Status, create(Status, { code: 10, message: "m", details: [{ typeUrl: "type.googleapis.com/google.rpc.ErrorInfo", value: info }] }));
      assert.equal(
        transcoder.status(details, 10, "ignored"),
        '{"code":10,"message":"m","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"has_pools","domain":"qod.v1","metadata":{}}]}',
      );
      assert.equal(transcoder.status(undefined, 12, "unknown method"), '{"code":12,"message":"unknown method","details":[]}');
    });
  });

  describe("status mapping", () => {
    // Envoy's Grpc::Utility::grpcToHttpStatus, copied from source/common/grpc/status.cc.
    const envoy: [number, string, number][] = [
      [0, "OK", 200],
      [1, "CANCELLED", 499],
      [2, "UNKNOWN", 500],
      [3, "INVALID_ARGUMENT", 400],
      [4, "DEADLINE_EXCEEDED", 504],
      [5, "NOT_FOUND", 404],
      [6, "ALREADY_EXISTS", 409],
      [7, "PERMISSION_DENIED", 403],
      [8, "RESOURCE_EXHAUSTED", 429],
      [9, "FAILED_PRECONDITION", 400],
      [10, "ABORTED", 409],
      [11, "OUT_OF_RANGE", 400],
      [12, "UNIMPLEMENTED", 501],
      [13, "INTERNAL", 500],
      [14, "UNAVAILABLE", 503],
      [15, "DATA_LOSS", 500],
      [16, "UNAUTHENTICATED", 401],
      [17, "(not a code)", 500],
    ];
    for (const [code, name, status] of envoy) {
      it(`maps ${name} to ${status}`, () => assert.equal(httpStatusFromGrpc(code), status));
    }
    it("renders a local reply as google.rpc.Status with an ErrorInfo reason", () => {
      assert.deepEqual(JSON.parse(localReplyBody(new LocalReply(404, "Could not resolve /x to a method."))), {
        code: 5,
        message: "Could not resolve /x to a method.",
        details: [{ "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "not_found", domain: "qod.v1", metadata: {} }],
      });
    });
  });

  it("percent-decodes UTF-8 and leaves malformed escapes alone", () => {
    assert.equal(urlUnescape("caf%C3%A9%zz%4"), "café%zz%4");
    assert.equal(urlUnescape("a%2Fb%3Ac%20d", true), "a%2Fb%3Ac d");
  });
});
