// The metrics listener (QOD_METRICS_HOST:QOD_METRICS_PORT): Prometheus's GET /metrics, and the
// probes, so an orchestrator can reach them without going through the API's proxy.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import { exposition, type Metrics } from "../metrics";
import { LocalReply, localReplyBody } from "./http-status";
import type { PlainHandler, PlainRoute } from "./plain-routes";

export interface MetricsListener {
  listen(host: string, port: number): Promise<number>;
  close(): Promise<void>;
}

export function createMetricsListener(metrics: Metrics, probes: readonly PlainRoute[], logger: Logger): MetricsListener {
  const log = logger.child({ component: "metrics" });
  const scrape: PlainHandler = async (_req, res) => {
    const { contentType, body } = await exposition(metrics);
    res.writeHead(200, { "content-type": contentType, "content-length": Buffer.byteLength(body) });
    res.end(body);
  };
  const routes = new Map<string, PlainHandler>([["/metrics", scrape], ...probes.map((p) => [p.path, p.handler] as const)]);
  const fail = (res: ServerResponse, reply: LocalReply) => {
    const body = localReplyBody(reply);
    res.writeHead(reply.status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
  };
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?", 1)[0];
    const handler = req.method === "GET" || req.method === "HEAD" ? routes.get(path) : undefined;
    if (!handler) return fail(res, new LocalReply(404, `${req.method} ${path} is not served here: GET /metrics, /livez, /readyz, /health, /ready`));
    try {
      await handler(req, res);
    } catch (err) {
      log.warn({ message: (err as Error).message, path }, "could not answer a metrics request");
      if (!res.headersSent) fail(res, new LocalReply(500, "internal error"));
      else res.destroy();
    }
  };
  let server: Server | undefined;
  return {
    listen(host, port) {
      const listening = createServer({ requestTimeout: 10_000 }, (req, res) => void handle(req, res));
      server = listening;
      return new Promise((resolve, reject) => {
        listening.once("error", reject);
        listening.listen(port, host, () => {
          listening.off("error", reject);
          resolve((listening.address() as AddressInfo).port);
        });
      });
    },
    close() {
      const listening = server;
      server = undefined;
      if (!listening) return Promise.resolve();
      return new Promise((resolve) => {
        listening.close(() => resolve());
        listening.closeAllConnections();
      });
    },
  };
}
