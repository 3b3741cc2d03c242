// envoy/envoy.yaml against Envoy's own API protos (shipped in @grpc/grpc-js-xds), and against
// the embedded gateway: the same services, print options, body limit, deadline and error bodies.
// (`envoy --mode validate` cannot run here: no Envoy binary can be installed.)
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createFileRegistry, fromBinary, fromJson, toJson, type DescMessage, type JsonObject, type JsonValue, type Registry } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import YAML from "yaml";
import { loadConfig } from "../src/config";
import { OPENAPI_PATHS, SWAGGER_UI_PATH } from "../src/gateway/api-docs";
import { LOCAL_REPLIES, LocalReply, localReplyBody, type LocalReplyStatus } from "../src/gateway/http-status";
import { buildRoutes, gatewayServices } from "../src/gateway/routes";
import { GATEWAY_DEADLINE_MS } from "../src/gateway/server";
import { loadRegistry, PRINT_OPTIONS } from "../src/gateway/transcode";
import { readDescriptor } from "../src/server/reflection";
import { blockWith } from "./helpers/docs";

const ROOT = path.join(__dirname, "..");

/** The Envoy protos envoy.yaml uses: the bootstrap plus every typed_config's type. */
const ENVOY_PROTOS = [
  "envoy/config/bootstrap/v3/bootstrap.proto",
  "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto",
  "envoy/extensions/filters/http/grpc_json_transcoder/v3/transcoder.proto",
  "envoy/extensions/filters/http/router/v3/router.proto",
  "envoy/extensions/upstreams/http/v3/http_protocol_options.proto",
  "envoy/extensions/access_loggers/stream/v3/stream.proto",
  // deploy/README-deploy.md's TLS listener.
  "envoy/extensions/transport_sockets/tls/v3/tls.proto",
];

/**
 * Builds (once per package version, cached under the OS temp dir) a descriptor set of Envoy's
 * API with `buf build`. The PGV validate.proto vendored beside envoy-api predates the
 * `ignore_empty` rule envoy-api uses, so each *Rules message gets that field first.
 */
function envoyDescriptorSet(): Uint8Array {
  const xds = path.dirname(require.resolve("@grpc/grpc-js-xds/package.json"));
  const { version } = JSON.parse(readFileSync(path.join(xds, "package.json"), "utf8")) as { version: string };
  const key = createHash("sha256").update(`${version}\n${ENVOY_PROTOS.join("\n")}`).digest("hex").slice(0, 16);
  const cached = path.join(tmpdir(), `qod-envoy-api-${key}.binpb`);
  if (!existsSync(cached)) {
    const work = mkdtempSync(path.join(tmpdir(), "qod-envoy-api-"));
    try {
      for (const dep of ["envoy-api", "xds", "googleapis"]) cpSync(path.join(xds, "deps", dep), path.join(work, dep), { recursive: true });
      const validate = readFileSync(path.join(xds, "deps/protoc-gen-validate/validate/validate.proto"), "utf8");
      mkdirSync(path.join(work, "pgv/validate"), { recursive: true });
      writeFileSync(path.join(work, "pgv/validate/validate.proto"), validate.replace(/^(message \w+Rules \{)\r?$/gm, "$1\n  optional bool ignore_empty = 1000;"));
      writeFileSync(path.join(work, "buf.yaml"), "version: v2\nmodules:\n  - path: envoy-api\n  - path: xds\n  - path: googleapis\n  - path: pgv\n");
      const out = path.join(work, "envoy.binpb");
      const paths = ENVOY_PROTOS.flatMap((p) => ["--path", `envoy-api/${p}`]);
      execFileSync(path.join(ROOT, "node_modules/.bin/buf"), ["build", "--as-file-descriptor-set", "--exclude-source-info", "-o", out, ...paths], { cwd: work, stdio: "pipe" });
      renameSync(out, cached); // atomic: a concurrent run sees the whole file or none
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  return readFileSync(cached);
}

const object = (value: JsonValue | undefined): JsonObject => {
  assert.ok(value && typeof value === "object" && !Array.isArray(value), `not an object: ${JSON.stringify(value)}`);
  return value;
};
const list = (value: JsonValue | undefined): JsonValue[] => {
  assert.ok(Array.isArray(value), `not a list: ${JSON.stringify(value)}`);
  return value;
};

describe("envoy/envoy.yaml", () => {
  const ours = loadRegistry(readDescriptor());
  let envoy: Registry;
  let Bootstrap: DescMessage;
  let bootstrap: JsonObject;
  let manager: JsonObject;
  let transcoder: JsonObject;

  before(function () {
    this.timeout(120_000); // the first run builds Envoy's descriptor set
    envoy = createFileRegistry(fromBinary(FileDescriptorSetSchema, envoyDescriptorSet()));
    const message = envoy.getMessage("envoy.config.bootstrap.v3.Bootstrap");
    assert.ok(message);
    Bootstrap = message;
    const yaml = YAML.parse(readFileSync(path.join(ROOT, "envoy/envoy.yaml"), "utf8")) as JsonValue;
    // Strict proto3 JSON parsing: unknown keys, bad enums or durations and unknown @types throw.
    const parsed = fromJson(Bootstrap, yaml, { registry: envoy });
    // Printed back with every field, names and defaults normalised.
    bootstrap = object(toJson(Bootstrap, parsed, { registry: envoy, alwaysEmitImplicit: true }));
    const listener = object(list(object(bootstrap.staticResources).listeners)[0]);
    manager = object(object(list(object(list(listener.filterChains)[0]).filters)[0]).typedConfig);
    transcoder = object(object(list(manager.httpFilters).find((f) => object(f).name === "envoy.filters.http.grpc_json_transcoder")).typedConfig);
  });

  it("is a valid Envoy bootstrap: the transcoder before the router, on the JSON port", () => {
    assert.deepEqual(list(manager.httpFilters).map((f) => object(f).name), ["envoy.filters.http.grpc_json_transcoder", "envoy.filters.http.router"]);
    const listener = object(list(object(bootstrap.staticResources).listeners)[0]);
    assert.equal(object(object(listener.address).socketAddress).portValue, loadConfig({}).httpPort);
  });

  it("fails on an unknown key, a bad duration or an unknown @type (the check is real)", () => {
    assert.throws(() => fromJson(Bootstrap, { static_resources: { bogus_field: 1 } }, { registry: envoy }), /bogus_field/);
    assert.throws(() => fromJson(Bootstrap, { static_resources: { clusters: [{ name: "x", connect_timeout: "thirty" }] } }, { registry: envoy }), /thirty/);
    const filter = { name: "t", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoderx" } };
    assert.throws(() => fromJson(Bootstrap, { static_resources: { listeners: [{ filter_chains: [{ filters: [filter] }] }] } }, { registry: envoy }), /Transcoderx/);
  });

  it("transcodes every qod.v1 service of the descriptor, and only those", () => {
    assert.deepEqual([...list(transcoder.services)].sort(), gatewayServices(ours).map((s) => s.typeName).sort());
    assert.equal(transcoder.protoDescriptor, "/etc/envoy/descriptor.binpb");
  });

  it("prints JSON with the embedded gateway's print options", () => {
    const options = object(transcoder.printOptions);
    for (const [name, value] of Object.entries(PRINT_OPTIONS)) {
      const camel = name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
      assert.equal(options[camel], value, name);
    }
  });

  it("converts gRPC statuses, rejects unknown methods and query parameters, and limits bodies as the gateway does", () => {
    assert.equal(transcoder.convertGrpcStatus, true);
    assert.deepEqual(object(transcoder.requestValidationOptions), { rejectUnknownMethod: true, rejectUnknownQueryParameters: true, rejectBindingBodyFieldCollisions: false });
    assert.equal(transcoder.maxRequestBodySize, loadConfig({}).maxBodyBytes);
    assert.equal(transcoder.ignoreUnknownQueryParameters, false);
    assert.equal(transcoder.autoMapping, false);
  });

  it("gives calls the gateway's deadline: the route timeout, and as grpc-timeout to the service", () => {
    const host = object(list(object(manager.routeConfig).virtualHosts)[0]);
    const route = object(list(host.routes).at(-1));
    assert.deepEqual(object(route.match).prefix, "/");
    assert.equal(object(route.route).timeout, `${GATEWAY_DEADLINE_MS / 1000}s`);
    const added = list(route.requestHeadersToAdd).map((h) => object(h));
    assert.deepEqual(object(added[0]?.header), { key: "grpc-timeout", value: `${GATEWAY_DEADLINE_MS / 1000}S`, rawValue: "" });
    assert.equal(added[0]?.appendAction, "OVERWRITE_IF_EXISTS_OR_ADD");
  });

  it("answers Envoy's own rejections with the gateway's local reply bodies", () => {
    const mappers = list(object(manager.localReplyConfig).mappers).map((m) => object(m));
    const byStatus = new Map(
      mappers.map((m) => {
        const comparison = object(object(object(m.filter).statusCodeFilter).comparison);
        assert.equal(comparison.op, "EQ");
        return [object(comparison.value).defaultValue as number, object(object(m.bodyFormatOverride).jsonFormat)];
      }),
    );
    assert.deepEqual([...byStatus.keys()].sort(), Object.keys(LOCAL_REPLIES).map(Number).sort());
    for (const [status, format] of byStatus) {
      const rendered = JSON.parse(JSON.stringify(format).replaceAll("%LOCAL_REPLY_BODY%", "why").replaceAll("%REQ(X-REQUEST-ID)%", "rid-1")) as JsonValue;
      assert.deepEqual(rendered, JSON.parse(localReplyBody(new LocalReply(status as LocalReplyStatus, "why"), "rid-1")), `status ${status}`);
    }
  });

  it("calls the service's gRPC port over HTTP/2, with gRPC health checking", () => {
    const cluster = object(list(object(bootstrap.staticResources).clusters)[0]);
    const endpoint = object(list(object(list(object(cluster.loadAssignment).endpoints)[0]).lbEndpoints)[0]);
    assert.equal(object(object(object(endpoint.endpoint).address).socketAddress).portValue, loadConfig({}).grpcPort);
    const protocol = object(object(cluster.typedExtensionProtocolOptions)["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]);
    assert.ok(object(object(protocol.explicitHttpConfig).http2ProtocolOptions));
    assert.ok(object(object(list(cluster.healthChecks)[0]).grpcHealthCheck));
  });

  it("sends the plain pages the JSON port answers to it untranscoded, and everything else to the transcoder", () => {
    const routes = list(object(list(object(manager.routeConfig).virtualHosts)[0]).routes).map((r) => object(r));
    const plain = routes.slice(0, -1);
    const paths = plain.map((r) => {
      const match = object(r.match);
      const [[kind, path]] = Object.entries(match).filter(([key]) => key === "path" || key === "pathSeparatedPrefix");
      assert.equal(typeof path, "string");
      return `${path as string}${kind === "path" ? "" : "*"}`;
    });
    // The probes' paths are written out here, as a spec's table would be.
    assert.deepEqual(paths, [...OPENAPI_PATHS, "/livez", "/readyz", "/health", "/ready", `${SWAGGER_UI_PATH}*`]);
    for (const route of plain) {
      assert.equal(object(route.route).cluster, "qod_http");
      const filter = object(object(route.typedPerFilterConfig)["envoy.filters.http.grpc_json_transcoder"]);
      assert.equal(filter["@type"], "type.googleapis.com/envoy.config.route.v3.FilterConfig");
      assert.equal(filter.disabled, true);
    }
    assert.equal(object(routes.at(-1)?.route).cluster, "qod");
    // No transcoded method answers there; /api/health is one, and reaches the transcoder.
    const transcoded = buildRoutes(ours, gatewayServices(ours));
    for (const path of paths) assert.equal(transcoded.match("GET", path.replace(/\*$/, "/")), undefined, path);
    assert.ok(transcoded.match("GET", "/api/health"));
    assert.ok(!paths.includes("/api/health"));
  });

  it("calls the service's JSON port over HTTP/1.1 for the plain pages", () => {
    const cluster = object(list(object(bootstrap.staticResources).clusters).find((c) => object(c).name === "qod_http"));
    const endpoint = object(list(object(list(object(cluster.loadAssignment).endpoints)[0]).lbEndpoints)[0]);
    // The gateway listens on QOD_HTTP_PORT and on Supavisor's port; compose exposes the second.
    const address = object(object(object(endpoint.endpoint).address).socketAddress);
    assert.equal(address.address, "qod");
    assert.equal(address.portValue, loadConfig({}).supavisorHttpPort);
    assert.deepEqual(object(cluster.typedExtensionProtocolOptions), {});
    assert.equal(object(object(list(cluster.healthChecks)[0]).httpHealthCheck).path, "/livez");
  });

  it("takes deploy/README-deploy.md's TLS for the listener as written", () => {
    const snippet = YAML.parse(blockWith("deploy/README-deploy.md", "DownstreamTlsContext")) as { filter_chains: [{ transport_socket: JsonValue }] };
    const yaml = YAML.parse(readFileSync(path.join(ROOT, "envoy/envoy.yaml"), "utf8")) as { static_resources: { listeners: [{ filter_chains: [Record<string, JsonValue>] }] } };
    yaml.static_resources.listeners[0].filter_chains[0].transport_socket = snippet.filter_chains[0].transport_socket;
    const parsed = object(toJson(Bootstrap, fromJson(Bootstrap, yaml as unknown as JsonValue, { registry: envoy }), { registry: envoy }));
    const chain = object(list(object(list(object(parsed.staticResources).listeners)[0]).filterChains)[0]);
    const tls = object(object(chain.transportSocket).typedConfig);
    assert.equal(tls["@type"], "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext");
    assert.deepEqual(list(object(tls.commonTlsContext).tlsCertificates), [
      { certificateChain: { filename: "/etc/envoy/tls/cert.pem" }, privateKey: { filename: "/etc/envoy/tls/key.pem" } },
    ]);
  });

  // Envoy refuses at start a response_body that is not a google.api.HttpBody ("not supported yet
  // for non-HttpBody fields", envoyproxy/envoy#11136), which is why single-object calls answer
  // the resource message itself instead of a wrapper.
  it("has no http rule Envoy's transcoder refuses to register", () => {
    const { routes } = buildRoutes(ours, gatewayServices(ours));
    const refused = routes.filter((r) => r.responseBody.length > 0 && r.responseBody.at(-1)?.message?.typeName !== "google.api.HttpBody");
    assert.deepEqual(refused.map((r) => r.method.name), []);
  });
});
