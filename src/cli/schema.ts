// What qodctl knows of the API, read from the descriptor set the gateway and Envoy read: the
// request fields its flags are made from (with their proto comments as help), and the JSON
// printing of responses, done by the gateway's own transcoder so `-o json` prints what the JSON
// API answers for the same call.
import { readFileSync } from "node:fs";
import path from "node:path";
import type { DescField, DescMessage, DescMethod, DescService, FileRegistry } from "@bufbuild/protobuf";
import { buildRoutes, gatewayServices, type Route } from "../gateway/routes";
import { createTranscoder, loadRegistry, type Transcoder } from "../gateway/transcode";
import { PACKAGE_ROOT } from "../package-root";

/** The descriptor set `npm run gen` builds (the one the gateway and envoy.yaml use). */
const DESCRIPTOR_PATH = path.join(PACKAGE_ROOT, "envoy", "descriptor.binpb");

export interface Schema {
  registry: FileRegistry;
  /** The RPC of a gRPC path (`/qod.v1.TenantService/CreateTenant`); throws for an unknown one. */
  method(grpcPath: string): DescMethod;
  /** The response as the JSON API's body for that call. */
  responseJson(method: DescMethod, bytes: Uint8Array): string;
  /** The JSON API's route of an RPC, e.g. `POST /api/tenant/create`. */
  httpRule(method: DescMethod): string | undefined;
  /** A descriptor's leading proto comment on one line, or "". */
  comment(desc: DescMethod | DescField): string;
}

// FileDescriptorProto field numbers (descriptor.proto) that make up source-info paths.
const FILE_MESSAGE_TYPE = 4;
const FILE_SERVICE = 6;
const MESSAGE_FIELD = 2;
const MESSAGE_NESTED_TYPE = 3;
const SERVICE_METHOD = 2;

function messagePath(message: DescMessage): number[] {
  if (message.parent) return [...messagePath(message.parent), MESSAGE_NESTED_TYPE, message.parent.proto.nestedType.indexOf(message.proto)];
  return [FILE_MESSAGE_TYPE, message.file.proto.messageType.indexOf(message.proto)];
}

function sourcePath(desc: DescMethod | DescField): number[] {
  if (desc.kind === "rpc") {
    const service: DescService = desc.parent;
    return [FILE_SERVICE, service.file.proto.service.indexOf(service.proto), SERVICE_METHOD, service.proto.method.indexOf(desc.proto)];
  }
  return [...messagePath(desc.parent), MESSAGE_FIELD, desc.parent.proto.field.indexOf(desc.proto)];
}

export function loadSchema(): Schema {
  const registry = loadRegistry(readFileSync(DESCRIPTOR_PATH));
  const transcoder: Transcoder = createTranscoder(registry);
  const routes = new Map<string, Route>();
  for (const route of buildRoutes(registry, gatewayServices(registry)).routes) {
    // Additional bindings share their method's response_body: the first route of a method speaks for all.
    if (!routes.has(route.grpcPath)) routes.set(route.grpcPath, route);
  }
  const comments = new Map<string, Map<string, string>>();

  function method(grpcPath: string): DescMethod {
    const [, serviceName = "", methodName = ""] = grpcPath.split("/");
    const found = registry.getService(serviceName)?.methods.find((m) => m.name === methodName);
    if (!found) throw new Error(`the descriptor set has no ${grpcPath}`);
    return found;
  }

  function commentsOf(desc: DescMethod | DescField): Map<string, string> {
    const file = desc.parent.file;
    let byPath = comments.get(file.name);
    if (!byPath) {
      byPath = new Map();
      for (const location of file.proto.sourceCodeInfo?.location ?? []) {
        if (location.leadingComments) byPath.set(location.path.join(","), location.leadingComments.trim().replace(/\s+/g, " "));
      }
      comments.set(file.name, byPath);
    }
    return byPath;
  }

  const routeOf = (rpc: DescMethod) => routes.get(`/${rpc.parent.typeName}/${rpc.name}`);

  return {
    registry,
    method,
    responseJson(rpc, bytes) {
      const route = routeOf(rpc);
      if (!route) throw new Error(`${rpc.parent.typeName}.${rpc.name} has no JSON mapping`);
      return transcoder.response(route, bytes);
    },
    httpRule(rpc) {
      const route = routeOf(rpc);
      return route ? `${route.httpMethod} ${route.template}` : undefined;
    },
    comment: (desc) => commentsOf(desc).get(sourcePath(desc).join(",")) ?? "",
  };
}
