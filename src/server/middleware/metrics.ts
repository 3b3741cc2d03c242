// go-grpc-prometheus's server metrics for every call, on both surfaces: started, handled (by
// status code) and the handling time. The labelled children are made once per method and
// surface, not looked up by their labels on every call.
import { performance } from "node:perf_hooks";
import type { Counter, Histogram } from "prom-client";
import type { Middleware } from "../../call/context";
import type { Metrics } from "../../metrics";
import { failedOutcome } from "./outcome";

type CallLabel = "grpc_type" | "grpc_service" | "grpc_method" | "surface";

interface MethodMetrics {
  started: Counter.Internal;
  seconds: Histogram.Internal<CallLabel>;
  handled: Map<string, Counter.Internal>;
  labels: Record<CallLabel, string>;
}

export function metricsMiddleware({ started, handled, seconds }: Metrics["calls"]): Middleware {
  const byMethod = new Map<string, MethodMetrics>();
  const metricsOf = (method: string, surface: string): MethodMetrics => {
    const key = `${surface} ${method}`;
    let found = byMethod.get(key);
    if (!found) {
      // `/qod.v1.TenantService/GetTenant`: the service's full name, then the method's.
      const [, service = "", name = ""] = method.split("/");
      const labels = { grpc_type: "unary", grpc_service: service, grpc_method: name, surface };
      found = { started: started.labels(labels), seconds: seconds.labels(labels), handled: new Map(), labels };
      byMethod.set(key, found);
    }
    return found;
  };
  const count = (m: MethodMetrics, code: string) => {
    let counter = m.handled.get(code);
    if (!counter) m.handled.set(code, (counter = handled.labels({ ...m.labels, grpc_code: code })));
    counter.inc();
  };

  return (next) => async (request, ctx) => {
    const m = metricsOf(ctx.method, ctx.surface);
    m.started.inc();
    const begun = performance.now();
    let code = "OK";
    try {
      return await next(request, ctx);
    } catch (err) {
      code = failedOutcome(err).code;
      throw err;
    } finally {
      m.seconds.observe((performance.now() - begun) / 1000);
      count(m, code);
    }
  };
}
