// A gRPC load generator for calls whose body must change from call to call (creates need unique
// names), which h2load cannot do: it sends one fixed body. Runs in its own process, speaks raw
// HTTP/2 (node:http2) with pre-encoded frames, and, unlike h2load, reads `grpc-status` from the
// trailers, so a call only counts as a success when the server said OK.
//
//   node --import tsx bench/load/grpc-load.ts '<json config>'   → one JSON Summary on stdout
//
// The body is a gRPC frame whose message holds `placeholder` (ASCII digits inside a string
// field); each call overwrites it with a fresh zero-padded counter, so lengths never change.
import http2 from "node:http2";
import { performance } from "node:perf_hooks";
import { ownCpuUs } from "../lib/cpu";
import { printResult } from "../lib/script";
import { summarize } from "../lib/stats";

export interface GrpcLoadConfig {
  /** e.g. http://127.0.0.1:50051 */
  url: string;
  /** e.g. /qod.v1.TenantService/CreateTenant */
  path: string;
  headers: Record<string, string>;
  /** The request frame, base64. */
  frame: string;
  /** ASCII text inside the frame to replace by a counter on each call; none sends the frame as is. */
  placeholder?: string;
  /** HTTP/2 connections, and calls in flight on each. */
  connections: number;
  streams: number;
  warmupMs: number;
  /** Measure for this long after the warm-up... */
  durationMs?: number;
  /** ...or send exactly this many calls (no warm-up) and measure them all. */
  count?: number;
  /** A call taking longer than this fails with "timeout". */
  timeoutMs?: number;
}

interface Outcome {
  status: string; // "0" for OK, else the gRPC code, "http_<status>" or an error name
  ms: number;
}

function call(session: http2.ClientHttp2Session, config: GrpcLoadConfig, body: Buffer): Promise<Outcome> {
  return new Promise((resolve) => {
    const started = performance.now();
    let grpcStatus: string | undefined;
    let httpStatus: number | undefined;
    let failure: string | undefined;
    const stream = session.request({
      ":method": "POST",
      ":path": config.path,
      "content-type": "application/grpc",
      te: "trailers",
      ...config.headers,
    });
    const timer = setTimeout(() => {
      failure = "timeout";
      stream.close(http2.constants.NGHTTP2_CANCEL);
    }, config.timeoutMs ?? 120_000);
    stream.on("response", (headers) => {
      httpStatus = Number(headers[":status"]);
      const inHeaders = headers["grpc-status"]; // a trailers-only answer (errors) carries it here
      if (inHeaders !== undefined) grpcStatus = String(inHeaders);
    });
    stream.on("trailers", (trailers) => {
      const inTrailers = (trailers as Record<string, string | string[] | undefined>)["grpc-status"];
      if (inTrailers !== undefined) grpcStatus = String(inTrailers);
    });
    stream.on("data", () => {});
    stream.on("error", (err: Error & { code?: string }) => (failure ??= err.code ?? err.name));
    stream.on("close", () => {
      clearTimeout(timer);
      const status = failure ?? (httpStatus !== 200 ? `http_${httpStatus ?? "none"}` : (grpcStatus ?? "no_grpc_status"));
      resolve({ status, ms: performance.now() - started });
    });
    stream.end(body);
  });
}

/** The summary of the measured window, plus every call sent and every OK answer (warm-up included). */
export async function runGrpcLoad(config: GrpcLoadConfig): Promise<ReturnType<typeof summarize> & { sent: number; okTotal: number; selfCpuUs: number }> {
  const template = Buffer.from(config.frame, "base64");
  const at = config.placeholder ? template.indexOf(config.placeholder) : -1;
  if (config.placeholder && at < 0) throw new Error("the placeholder is not in the frame");
  const width = config.placeholder?.length ?? 0;
  let counter = 0;
  const nextBody = (): Buffer => {
    if (at < 0) return template;
    const body = Buffer.from(template);
    body.write(String(counter++).padStart(width, "0").slice(-width), at, "latin1");
    return body;
  };

  const sessions = await Promise.all(
    Array.from({ length: config.connections }, () =>
      new Promise<http2.ClientHttp2Session>((resolve, reject) => {
        const session = http2.connect(config.url);
        session.once("connect", () => resolve(session));
        session.once("error", reject);
      }),
    ),
  );
  for (const s of sessions) s.on("error", () => {}); // failures are counted per call

  const latencies: number[] = [];
  const errors: Record<string, number> = {};
  let sent = 0;
  let okTotal = 0;
  const countMode = config.count !== undefined;
  const t0 = performance.now();
  const measureFrom = countMode ? t0 : t0 + config.warmupMs;
  const measureUntil = countMode ? Infinity : measureFrom + (config.durationMs ?? 5_000);
  let lastEnd = t0;

  const worker = async (session: http2.ClientHttp2Session) => {
    for (;;) {
      if (countMode ? sent >= (config.count as number) : performance.now() >= measureUntil) return;
      sent++;
      const outcome = await call(session, config, nextBody());
      const end = performance.now();
      lastEnd = Math.max(lastEnd, end);
      if (outcome.status === "0") okTotal++;
      if (end < measureFrom || end > measureUntil) continue; // warm-up, or finished after the window
      if (outcome.status === "0") latencies.push(outcome.ms);
      else errors[outcome.status] = (errors[outcome.status] ?? 0) + 1;
    }
  };
  await Promise.all(sessions.flatMap((session) => Array.from({ length: config.streams }, () => worker(session))));
  for (const s of sessions) s.close();
  const seconds = countMode ? (lastEnd - t0) / 1000 : (config.durationMs ?? 5_000) / 1000;
  return { ...summarize(latencies, seconds, errors), sent, okTotal, selfCpuUs: ownCpuUs() };
}

if (require.main === module) printResult("grpc-load", runGrpcLoad(JSON.parse(process.argv[2] ?? "{}") as GrpcLoadConfig));
