// Plain HTTP handlers the JSON listener answers before the transcoder's routes: the API
// documents, Swagger UI, probes. Each is bound to a method and an exact path or a path prefix;
// a table that would shadow a transcoded route is refused at start, so every other path (also
// under /api) still reaches the transcoder and its 404.
import type { IncomingMessage, ServerResponse } from "node:http";
import { parseTemplate, type RouteTable } from "./routes";

/**
 * Answers one request. A handler may throw (or reject with) a LocalReply: the gateway answers
 * it as it answers its own, in the google.rpc.Status JSON.
 */
export type PlainHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export interface PlainRoute {
  /** The request method; a GET route also answers HEAD (Node sends no body for HEAD). */
  method: string;
  /** An exact path (`/api/openapi`), or with `prefix`, the start of the paths (`/swaggerui/`). */
  path: string;
  prefix?: boolean;
  handler: PlainHandler;
}

export interface PlainRouteTable {
  /** The handler for a request target (the query is ignored); undefined when none is bound. */
  find(method: string, target: string): PlainHandler | undefined;
}

const segmentsOf = (path: string) => path.split("/").filter((s, i, all) => i > 0 && (s !== "" || i < all.length - 1));

/**
 * Whether a transcoded route could answer a path a plain route takes. Exact paths are tried on
 * the route table itself; a prefix overlaps a template that agrees with it segment by segment
 * (literals equal, wildcards anything), as far as both go.
 */
function overlaps(plain: PlainRoute, method: string, routes: RouteTable): boolean {
  if (!plain.prefix) return routes.match(method, plain.path) !== undefined;
  const prefix = segmentsOf(plain.path);
  return routes.routes.some((route) => {
    if (route.httpMethod !== method) return false;
    const { segments } = parseTemplate(route.template);
    for (let i = 0; i < prefix.length; i++) {
      const segment = segments[i];
      if (segment === undefined) return false;
      if (segment.kind === "**") return true;
      if (segment.kind === "literal" && segment.value !== prefix[i]) return false;
    }
    return true;
  });
}

/** Indexes the plain routes; throws when two take the same path or one shadows a transcoded route. */
export function plainRouteTable(plain: readonly PlainRoute[], transcoded: RouteTable): PlainRouteTable {
  const exact = new Map<string, PlainHandler>();
  const prefixes: PlainRoute[] = [];
  for (const route of plain) {
    const where = `${route.method} ${route.path}${route.prefix ? "*" : ""}`;
    if (!route.path.startsWith("/") || route.path.includes("?")) throw new Error(`${where}: a path starts with / and has no query`);
    for (const method of route.method === "GET" ? ["GET", "HEAD"] : [route.method]) {
      if (overlaps(route, method, transcoded)) throw new Error(`${where}: a transcoded route answers ${method} there too`);
    }
    if (route.prefix) {
      if (prefixes.some((p) => p.method === route.method && p.path === route.path)) throw new Error(`${where}: bound twice`);
      prefixes.push(route);
    } else {
      const key = `${route.method} ${route.path}`;
      if (exact.has(key)) throw new Error(`${where}: bound twice`);
      exact.set(key, route.handler);
    }
  }
  // The longest prefix wins, so a more specific one can sit under another.
  prefixes.sort((a, b) => b.path.length - a.path.length);

  const lookup = (method: string, path: string) =>
    exact.get(`${method} ${path}`) ?? prefixes.find((p) => p.method === method && path.startsWith(p.path))?.handler;

  return {
    find(method, target) {
      const query = target.indexOf("?");
      const path = query < 0 ? target : target.slice(0, query);
      return lookup(method, path) ?? (method === "HEAD" ? lookup("GET", path) : undefined);
    },
  };
}
