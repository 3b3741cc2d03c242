// The HTTP probes, answered on the JSON listener and on the metrics listener alike:
//   GET /livez   the process answers (200 always);
//   GET /readyz  200 when every readiness check passes, else 503; both list the checks;
//   GET /health  upstream QOD's liveness: {"status":"ok","poolsCount":…,"nodesCount":1}, always 200;
//   GET /ready   upstream QOD's readiness: /health's body when ready, else 503 with no body.
// Supavisor's GET /api/health is a method of the API (SupavisorService), not a probe.
import type { ServerResponse } from "node:http";
import type { PlainRoute } from "./plain-routes";

/** One readiness check's state: `off` when what it checks is turned off (the data plane). */
export type CheckState = "ok" | "failing" | "off";

export interface Readiness {
  ready: boolean;
  /** By check name (`state_database`, `migrations`, `data_plane`). */
  checks: Record<string, CheckState>;
}

export interface ProbeSources {
  readiness(): Readiness;
  /** The pools this service knows (upstream QOD's `poolsCount`). */
  poolsCount(): Promise<number>;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const payload = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { "content-type": "application/json", "content-length": payload.length, "cache-control": "no-store" });
  res.end(payload);
}

export function probeRoutes(sources: ProbeSources): PlainRoute[] {
  const health = async () => ({ status: "ok", poolsCount: await sources.poolsCount(), nodesCount: 1 });
  return [
    { method: "GET", path: "/livez", handler: (_req, res) => sendJson(res, 200, { status: "ok" }) },
    {
      method: "GET",
      path: "/readyz",
      handler(_req, res) {
        const { ready, checks } = sources.readiness();
        sendJson(res, ready ? 200 : 503, { status: ready ? "ready" : "not_ready", checks });
      },
    },
    { method: "GET", path: "/health", handler: async (_req, res) => sendJson(res, 200, await health()) },
    {
      method: "GET",
      path: "/ready",
      async handler(_req, res) {
        if (sources.readiness().ready) return sendJson(res, 200, await health());
        res.writeHead(503, { "content-length": 0, "cache-control": "no-store" });
        res.end();
      },
    },
  ];
}
