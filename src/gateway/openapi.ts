// The OpenAPI 3.1 document of the JSON /api, built from the transcoder's own route table and the
// descriptor set's types and comments (buf keeps source info), so it names exactly the routes the
// gateway serves and the JSON it prints. The gateway serves it; `npm run gen` commits it.
import { readFileSync } from "node:fs";
import path from "node:path";
import type { DescField, DescMessage, DescMethod, DescService, JsonObject, Registry } from "@bufbuild/protobuf";
import { PACKAGE_ROOT } from "../package-root";
import { PUBLIC_METHOD_PATHS } from "../call/public-methods";
import { Comments, documented } from "./openapi-comments";
import { Schemas } from "./openapi-schemas";
import { FieldIndex, parseTemplate, type PathTemplate, type Route } from "./routes";

export interface OpenApiOptions {
  /** `info.version`: the package's version. */
  version: string;
  /** gRPC paths of the methods that need no credential (the authentication layer's list). */
  publicMethods: ReadonlySet<string>;
}

/** The version in the package's package.json. */
export function packageVersion(): string {
  const { version } = JSON.parse(readFileSync(path.join(PACKAGE_ROOT, "package.json"), "utf8")) as { version: string };
  return version;
}

/** The document as committed in envoy/openapi.json: pretty-printed, with a final newline. */
export function renderOpenApi(document: JsonObject): string {
  return `${JSON.stringify(document, null, 2)}\n`;
}

// HTTP methods an OpenAPI 3.1 path item can hold.
const OPENAPI_METHODS = new Set(["get", "put", "post", "delete", "options", "head", "patch", "trace"]);

const STATUS_SCHEMA = "google.rpc.Status";
/** The details the service puts in a google.rpc.Status (src/errors.ts, http-status.ts). */
const STATUS_DETAILS = ["google.rpc.ErrorInfo", "google.rpc.BadRequest"];

const SECURITY_SCHEMES = {
  ApiKey: {
    type: "apiKey",
    in: "header",
    name: "X-API-Key",
    description: "The static API key (`QOD_API_KEY`), a session token from Login, or a personal access token.",
  },
  Bearer: {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
    description: "`Authorization: Bearer <JWT>`: a session token from Login, or a service JWT signed with `API_JWT_SECRET` (HS256, `exp` required).",
  },
} as const;
const AUTHENTICATED = Object.keys(SECURITY_SCHEMES).map((name) => ({ [name]: [] }));

/** Every error answer, by HTTP status (SPEC §4 and the gateway's own local replies). */
const ERROR_RESPONSES = {
  "400": ["BadRequest", "Invalid input (reason `invalid_*`, with `google.rpc.BadRequest` field violations), an unknown query parameter, or an undecodable JSON body."],
  "401": ["Unauthenticated", "No valid credential (reason `unauthenticated`)."],
  "403": ["PermissionDenied", "The caller may not do this (reason `tenant_forbidden`, `superuser_required` or `admin_required`)."],
  "404": ["NotFound", "The object does not exist (reason `not_found`), or no route has this method and path."],
  "409": ["Conflict", "The object already exists (reason `exists`), or it still has pools (reason `has_pools`)."],
  "413": ["PayloadTooLarge", "The request body is larger than the configured limit (reason `invalid_body_size`)."],
  "429": ["TooManyRequests", "Too many requests (reason `rate_limited` or `quota_exceeded`)."],
  "500": ["Internal", "An internal error (reason `internal`); the message says no more."],
  "503": ["Unavailable", "The state database is unavailable (reason `unavailable`)."],
  "504": ["GatewayTimeout", "The call did not finish within the route's timeout (reason `deadline_exceeded`)."],
} as const;
/** A public method's 401 is its own refusal of the credentials the request carries (Login's password). */
const CREDENTIALS_REFUSED = ["CredentialsRefused", "The credentials in the request were refused (reason `unauthenticated`)."] as const;
const PUBLIC_OMITS = new Set(["401", "403"]);

const responseRef = (name: string): JsonObject => ({ $ref: `#/components/responses/${name}` });
/** Components in name order, so the document is the same for the same descriptor. */
const byKey = ([a]: [string, unknown], [b]: [string, unknown]) => (a < b ? -1 : a > b ? 1 : 0);

/** The template as an OpenAPI path: `{name=shelves/*}` becomes `{name}`. */
function openApiPath(template: PathTemplate): string {
  const parts: string[] = [];
  for (let i = 0; i < template.segments.length; ) {
    const variable = template.variables.find((v) => v.start === i);
    if (variable) {
      parts.push(`{${variable.fieldPath.join(".")}}`);
      i = variable.end < 0 ? template.segments.length : variable.end;
    } else {
      const segment = template.segments[i];
      parts.push(segment.kind === "literal" ? segment.value : segment.kind);
      i += 1;
    }
  }
  return `/${parts.join("/")}${template.verb ? `:${template.verb}` : ""}`;
}

/** The pattern a variable's value follows when it spans more than `*` (e.g. `shelves/[^/]+`). */
function variablePattern(template: PathTemplate, variable: PathTemplate["variables"][number]): string | undefined {
  const segments = template.segments.slice(variable.start, variable.end < 0 ? undefined : variable.end);
  if (segments.length === 1 && segments[0].kind === "*") return undefined;
  const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return `^${segments.map((s) => (s.kind === "literal" ? escape(s.value) : s.kind === "*" ? "[^/]+" : ".*")).join("/")}$`;
}

const startsWith = (fields: readonly DescField[], prefix: readonly DescField[]) => prefix.length > 0 && prefix.every((f, i) => fields[i] === f);

/**
 * The query parameters of a route: every field a query string can set that is neither bound by
 * the path nor inside the body, named by its JSON name path (`page.size`), as the transcoder
 * resolves them. A rule with `body: "*"` takes none.
 */
function queryParameters(route: Route, schemas: Schemas, comments: Comments, pathBound: readonly (readonly DescField[])[]): JsonObject[] {
  if (route.bodyRule === "*") return [];
  const parameters: JsonObject[] = [];
  const walk = (message: DescMessage, prefix: DescField[], seen: ReadonlySet<DescMessage>) => {
    for (const field of message.fields) {
      const fields = [...prefix, field];
      if (startsWith(fields, route.body) || pathBound.some((bound) => bound.length === fields.length && startsWith(fields, bound))) continue;
      if (schemas.bindable(field)) {
        parameters.push({ name: fields.map((f) => schemas.key(f)).join("."), in: "query", ...documented(comments, field), schema: schemas.value(field) });
      } else if (schemas.nestsParameters(field) && !seen.has(field.message)) {
        walk(field.message, fields, new Set([...seen, field.message]));
      }
    }
  };
  walk(route.method.input, [], new Set([route.method.input]));
  return parameters;
}

/** Builds the document for the routes of `buildRoutes`; throws for a route OpenAPI 3.1 cannot describe. */
export function buildOpenApi(registry: Registry, routes: readonly Route[], options: Partial<OpenApiOptions> = {}): JsonObject {
  const { version = packageVersion(), publicMethods = PUBLIC_METHOD_PATHS } = options;
  const comments = new Comments();
  const schemas = new Schemas(comments);
  const paths = new Map<string, JsonObject>();
  const services: DescService[] = [];
  const bindings = new Map<DescMethod, number>();
  const fields = new FieldIndex();

  for (const route of routes) {
    const { method } = route;
    const httpMethod = route.httpMethod.toLowerCase();
    const where = `${route.httpMethod} ${route.template} (${route.grpcPath})`;
    if (!OPENAPI_METHODS.has(httpMethod)) throw new Error(`${where}: OpenAPI 3.1 has no ${route.httpMethod} operations`);
    if (!services.includes(method.parent)) services.push(method.parent);

    const template = parseTemplate(route.template);
    const pathBound = template.variables.map((v) => fields.resolve(method.input, v.fieldPath));
    const pathParameters = template.variables.map((variable, i) => {
      const field = pathBound[i].at(-1)!;
      const pattern = variablePattern(template, variable);
      return {
        name: variable.fieldPath.join("."),
        in: "path",
        required: true,
        ...documented(comments, field),
        schema: { ...schemas.value(field), ...(pattern ? { pattern } : {}) },
      };
    });
    const parameters = [...pathParameters, ...queryParameters(route, schemas, comments, pathBound)];

    const bodyField = route.body.at(-1);
    const requestBody =
      route.bodyRule === ""
        ? undefined
        : {
            ...(bodyField ? documented(comments, bodyField) : documented(comments, method.input)),
            content: { "application/json": { schema: bodyField ? schemas.value(bodyField) : schemas.message(method.input) } },
          };

    const responseField = route.responseBody.at(-1);
    const ok = {
      description: (responseField ? comments.of(responseField) : comments.of(method.output)) ?? "The call's response.",
      content: { "application/json": { schema: responseField ? schemas.value(responseField) : schemas.message(method.output) } },
    };

    const isPublic = publicMethods.has(route.grpcPath);
    const errors: [string, JsonObject][] = Object.entries(ERROR_RESPONSES)
      .filter(([status]) => !isPublic || !PUBLIC_OMITS.has(status))
      .map(([status, [name]]) => [status, responseRef(name)]);
    if (isPublic) errors.push(["401", responseRef(CREDENTIALS_REFUSED[0])]);
    errors.sort(([a], [b]) => Number(a) - Number(b));

    const binding = (bindings.get(method) ?? 0) + 1;
    bindings.set(method, binding);
    const operation: JsonObject = {
      tags: [method.parent.name],
      summary: method.name,
      ...documented(comments, method),
      // Additional bindings of one method get numbered ids.
      operationId: `${method.parent.name}_${method.name}${binding > 1 ? `_${binding}` : ""}`,
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(requestBody ? { requestBody } : {}),
      responses: { "200": ok, ...Object.fromEntries(errors) },
      security: isPublic ? [] : AUTHENTICATED,
    };

    const openPath = openApiPath(template);
    const item = paths.get(openPath) ?? {};
    if (item[httpMethod]) throw new Error(`${where}: ${route.httpMethod} ${openPath} is already described`);
    item[httpMethod] = operation;
    paths.set(openPath, item);
  }

  const status = registry.getMessage(STATUS_SCHEMA);
  if (!status) throw new Error(`the descriptor set lacks ${STATUS_SCHEMA}`);
  const errorSchema = schemas.message(status);
  const details = STATUS_DETAILS.map((typeName) => {
    const detail = registry.getMessage(typeName);
    if (!detail) throw new Error(`the descriptor set lacks ${typeName}`);
    return {
      type: "object",
      properties: { "@type": { const: `type.googleapis.com/${typeName}` } },
      required: ["@type"],
      allOf: [schemas.message(detail)],
    };
  });
  // The Status's `details` are Anys: only the two kinds the service sends are listed.
  const statusProperties = schemas.components.get(STATUS_SCHEMA)!.properties as JsonObject;
  statusProperties[schemas.key(status.field.details)] = { ...(statusProperties[schemas.key(status.field.details)] as JsonObject), items: { oneOf: details } };

  const responses: [string, JsonObject][] = [...Object.values(ERROR_RESPONSES), CREDENTIALS_REFUSED].map(([name, description]) => [
    name,
    { description, content: { "application/json": { schema: errorSchema } } },
  ]);

  return {
    openapi: "3.1.0",
    info: {
      title: "QOD control plane API",
      version,
      description:
        "The JSON `/api` of the QOD control plane: each operation is one RPC of the `qod.v1` gRPC services, transcoded as Envoy's gRPC-JSON transcoder does (proto3 JSON, lowerCamelCase names unless a field names its own, 64-bit integers as strings). A failed call answers a `google.rpc.Status` body.",
    },
    tags: services.map((service) => ({ name: service.name, ...documented(comments, service) })),
    paths: Object.fromEntries(paths),
    components: {
      schemas: Object.fromEntries([...schemas.components].sort(byKey)),
      responses: Object.fromEntries(responses.sort(byKey)),
      securitySchemes: SECURITY_SCHEMES,
    },
  };
}
