// The route table: every google.api.http rule of the gateway's services, matched as Envoy's
// transcoder matches them (grpc-httpjson-transcoding's PathMatcher), with path variables and
// query parameters resolved to request fields. Built once at start; matching a literal path
// is one map lookup.
import { getOption, type DescField, type DescMessage, type DescMethod, type DescService, type Registry } from "@bufbuild/protobuf";
import { LocalReply } from "./http-status";

/** Only our own API is transcoded: never health or reflection. */
const GATEWAY_PACKAGE = "qod.v1";

/** The services the gateway (and envoy.yaml's `services`) serve. */
export function gatewayServices(registry: Registry): DescService[] {
  const services: DescService[] = [];
  for (const type of registry) {
    if (type.kind === "service" && type.typeName.startsWith(`${GATEWAY_PACKAGE}.`)) services.push(type);
  }
  return services;
}

/** google.api.HttpRule as @bufbuild/protobuf reads it from the method options. */
interface HttpRule {
  pattern: { case: "get" | "put" | "post" | "delete" | "patch"; value: string } | { case: "custom"; value: { kind: string; path: string } } | { case: undefined };
  body: string;
  responseBody: string;
  additionalBindings: HttpRule[];
}

type Segment = { kind: "literal"; value: string } | { kind: "*" } | { kind: "**" };

/** A variable covers segments [start, end); end -1 means "to the end of the path" (`**`). */
interface Variable {
  fieldPath: string[];
  start: number;
  end: number;
}

export interface PathTemplate {
  segments: Segment[];
  variables: Variable[];
  verb: string;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Parses the http.proto template grammar:
 * `Template = "/" Segments [":" Verb]`, `Segment = "*" | "**" | LITERAL | "{" FieldPath ["=" Segments] "}"`.
 */
export function parseTemplate(template: string): PathTemplate {
  const fail = (why: string): never => {
    throw new Error(`invalid path template "${template}": ${why}`);
  };
  if (!template.startsWith("/")) fail("must start with /");
  let rest = template.slice(1);
  let verb = "";
  const colon = rest.lastIndexOf(":");
  if (colon >= 0 && !/[/{}]/.test(rest.slice(colon))) {
    verb = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!verb) fail("empty verb");
  }
  const segments: Segment[] = [];
  const variables: Variable[] = [];
  const addSegment = (text: string) => {
    if (text === "*" || text === "**") segments.push({ kind: text });
    else if (text && !/[{}*=]/.test(text)) segments.push({ kind: "literal", value: text });
    else fail(`bad segment "${text}"`);
  };
  let i = 0;
  while (i < rest.length) {
    if (rest[i] === "{") {
      const close = rest.indexOf("}", i);
      if (close < 0) fail("unclosed {");
      const inner = rest.slice(i + 1, close);
      const eq = inner.indexOf("=");
      const fieldPath = (eq < 0 ? inner : inner.slice(0, eq)).split(".");
      if (!fieldPath.every((name) => IDENT.test(name))) fail(`bad variable "${inner}"`);
      const start = segments.length;
      for (const part of (eq < 0 ? "*" : inner.slice(eq + 1)).split("/")) addSegment(part);
      variables.push({ fieldPath, start, end: segments.at(-1)?.kind === "**" ? -1 : segments.length });
      i = close + 1;
    } else {
      const slash = rest.indexOf("/", i);
      const end = slash < 0 ? rest.length : slash;
      addSegment(rest.slice(i, end));
      i = end;
    }
    if (i < rest.length) {
      if (rest[i] !== "/") fail(`expected / at ${i + 1}`);
      i += 1;
      if (i === rest.length) fail("trailing /");
    }
  }
  if (segments.some((s, n) => s.kind === "**" && n !== segments.length - 1)) fail("** must be last");
  return { segments, variables, verb };
}

// RFC 6570 reserved characters: Envoy's default url_unescape_spec leaves them escaped in
// multi-segment variables, so a `%2F` in a name never turns into a path separator.
const RESERVED = new Set([..."!#$&'()*+,/:;=?@[]"].map((c) => c.charCodeAt(0)));
const hex = (c: number) => (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);

/** Percent-decodes (UTF-8), optionally keeping reserved characters escaped. `+` stays `+`. */
export function urlUnescape(text: string, keepReserved = false): string {
  if (!text.includes("%")) return text;
  const raw = Buffer.from(text, "latin1");
  const out = Buffer.alloc(raw.length);
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (c === 0x25 && i + 2 < raw.length && hex(raw[i + 1]) && hex(raw[i + 2])) {
      const byte = parseInt(raw.toString("latin1", i + 1, i + 3), 16);
      if (!(keepReserved && RESERVED.has(byte))) {
        out[n++] = byte;
        i += 2;
        continue;
      }
    }
    out[n++] = c;
  }
  return out.subarray(0, n).toString("utf8");
}

export interface Route {
  httpMethod: string;
  template: string;
  method: DescMethod;
  /** The gRPC path, `/qod.v1.TenantService/GetTenant`. */
  grpcPath: string;
  /** Where the JSON body goes; empty for the whole request (`body: "*"`, and rules without a body, as in Envoy). */
  body: readonly DescField[];
  /** The rule's `body` as written: "" (the rule declares no body), "*" or a field path. */
  bodyRule: string;
  /** The response field sent as the body (`response_body`); empty for the whole response. */
  responseBody: readonly DescField[];
}

/** A value bound to a request field from the path or the query string. */
export interface Binding {
  fields: readonly DescField[];
  value: string;
}

interface TemplateRoute {
  route: Route;
  parsed: PathTemplate;
  variables: { fields: DescField[]; start: number; end: number }[];
}

export interface RouteTable {
  readonly routes: readonly Route[];
  /**
   * The route for a request target (path and query), with its bindings; undefined when no rule
   * matches (Envoy: 404). Throws LocalReply 400 for a query parameter naming no field.
   */
  match(httpMethod: string, target: string): { route: Route; bindings: Binding[] } | undefined;
}

/** Finds fields by proto name or JSON name, as Envoy's TypeHelper does; one index per message. */
export class FieldIndex {
  private readonly byMessage = new Map<DescMessage, Map<string, DescField>>();

  find(message: DescMessage, name: string): DescField | undefined {
    let index = this.byMessage.get(message);
    if (!index) {
      index = new Map();
      for (const f of message.fields) index.set(f.name, f).set(f.jsonName, f);
      this.byMessage.set(message, index);
    }
    return index.get(name) ?? (name.includes("%") ? index.get(urlUnescape(name)) : undefined);
  }

  /** Resolves `a.b.c` to fields; every field but the last must be a singular message (Envoy's messages). */
  resolve(message: DescMessage, names: readonly string[]): DescField[] {
    const fields: DescField[] = [];
    let current = message;
    names.forEach((name, i) => {
      const field = this.find(current, name);
      if (!field) throw new LocalReply(400, `Could not find field "${name}" in the type "${current.typeName}".`);
      fields.push(field);
      if (i < names.length - 1) {
        if (field.fieldKind !== "message") {
          throw new LocalReply(400, `Encountered a non-leaf field "${field.name}" that is not a message while parsing a field path`);
        }
        current = field.message;
      }
    });
    return fields;
  }
}

/** Splits a request path as Envoy does: custom verb off, then segments, trailing empty ones dropped. */
function splitPath(path: string, verbs: ReadonlySet<string>): { parts: string[]; verb: string } {
  let verb = "";
  const colon = path.lastIndexOf(":");
  if (colon > path.lastIndexOf("/") && verbs.has(path.slice(colon + 1))) {
    verb = path.slice(colon + 1);
    path = path.slice(0, colon);
  }
  const parts = path.length > 0 ? path.slice(1).split("/") : [];
  while (parts.length > 0 && parts.at(-1) === "") parts.pop();
  return { parts, verb };
}

function matches(segments: readonly Segment[], parts: readonly string[]): boolean {
  const open = segments.at(-1)?.kind === "**";
  if (open ? parts.length < segments.length - 1 : parts.length !== segments.length) return false;
  return segments.every((s, i) => s.kind !== "literal" || s.value === parts[i]);
}

// Literal beats `*` beats `**`, segment by segment (the trie's lookup order).
const rank = (s: Segment | undefined) => (s === undefined ? -1 : s.kind === "literal" ? 0 : s.kind === "*" ? 1 : 2);
function moreSpecific(a: readonly Segment[], b: readonly Segment[]): boolean {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (rank(a[i]) !== rank(b[i])) return rank(a[i]) < rank(b[i]);
  }
  return false;
}

const literalKey = (httpMethod: string, parts: readonly string[], verb: string) => `${httpMethod} /${parts.join("/")}:${verb}`;

/** Builds the table from the http rules of `services`; throws on a rule Envoy would refuse. */
export function buildRoutes(registry: Registry, services: readonly DescService[]): RouteTable {
  const http = registry.getExtension("google.api.http");
  if (!http) throw new Error("the descriptor set lacks google/api/annotations.proto");
  const fields = new FieldIndex();
  const routes: Route[] = [];
  const literal = new Map<string, Route>();
  const templated: TemplateRoute[] = [];
  const verbs = new Set<string>();

  // As in Envoy, response_body belongs to the method: additional bindings share the top rule's.
  const add = (method: DescMethod, rule: HttpRule, responseBody: string) => {
    const where = `${method.parent.typeName}.${method.name}`;
    const { pattern } = rule;
    if (pattern.case === undefined) throw new Error(`${where}: http rule without a pattern`);
    const [httpMethod, template] = pattern.case === "custom" ? [pattern.value.kind, pattern.value.path] : [pattern.case.toUpperCase(), pattern.value];
    const fieldPath = (message: DescMessage, path: string) => (path === "" || path === "*" ? [] : fields.resolve(message, path.split(".")));
    const route: Route = {
      httpMethod,
      template,
      method,
      grpcPath: `/${method.parent.typeName}/${method.name}`,
      body: fieldPath(method.input, rule.body),
      bodyRule: rule.body,
      responseBody: fieldPath(method.output, responseBody),
    };
    const parsed = parseTemplate(template);
    if (parsed.verb) verbs.add(parsed.verb);
    if (parsed.variables.length === 0 && parsed.segments.every((s) => s.kind === "literal")) {
      const key = literalKey(httpMethod, parsed.segments.map((s) => (s as { value: string }).value), parsed.verb);
      if (literal.has(key)) throw new Error(`${where}: ${httpMethod} ${template} is already bound to ${literal.get(key)!.grpcPath}`);
      literal.set(key, route);
    } else {
      const variables = parsed.variables.map((v) => ({ fields: fields.resolve(method.input, v.fieldPath), start: v.start, end: v.end }));
      templated.push({ route, parsed, variables });
    }
    routes.push(route);
    for (const extra of rule.additionalBindings) add(method, extra, responseBody);
  };

  for (const service of services) {
    for (const method of service.methods) {
      if (method.methodKind !== "unary") throw new Error(`${service.typeName}.${method.name}: only unary methods are transcoded`);
      const rule = getOption(method, http) as HttpRule;
      add(method, rule, rule.responseBody);
    }
  }

  return {
    routes,
    match(httpMethod, target) {
      const q = target.indexOf("?");
      const { parts, verb } = splitPath(q < 0 ? target : target.slice(0, q), verbs);
      let found: { route: Route; bindings: Binding[] } | undefined;
      const exact = literal.get(literalKey(httpMethod, parts, verb));
      if (exact) {
        found = { route: exact, bindings: [] };
      } else {
        let best: TemplateRoute | undefined;
        for (const t of templated) {
          if (t.route.httpMethod !== httpMethod || t.parsed.verb !== verb || !matches(t.parsed.segments, parts)) continue;
          if (!best || moreSpecific(t.parsed.segments, best.parsed.segments)) best = t;
        }
        if (!best) return undefined;
        const bindings = best.variables.map((v) => {
          const end = v.end < 0 ? parts.length : v.end;
          // A one-segment variable is fully unescaped; a multi-segment one keeps reserved characters.
          const multi = v.end < 0 || end - v.start > 1;
          return { fields: v.fields, value: parts.slice(v.start, end).map((p) => urlUnescape(p, multi)).join("/") };
        });
        found = { route: best.route, bindings };
      }
      if (q >= 0) {
        // `name=value` pairs; names are field paths. Pairs without `=` or with an empty name are ignored.
        for (const param of target.slice(q + 1).split("&")) {
          const eq = param.indexOf("=");
          if (eq <= 0) continue;
          found.bindings.push({
            fields: fields.resolve(found.route.method.input, param.slice(0, eq).split(".")),
            value: urlUnescape(param.slice(eq + 1)),
          });
        }
      }
      return found;
    },
  };
}
