// REST calls to the JSON /api gateway through fetch, and assertions on its google.rpc.Status error
// bodies.
import assert from "node:assert/strict";
import { type status } from "@grpc/grpc-js";
import type { TestApp } from "./app";
import { metadataFor, type CallOptions } from "./clients";

export interface RestResponse {
  status: number;
  headers: Headers;
  text: string;
  /** The body parsed as JSON (undefined when it is not JSON). */
  json: unknown;
}

/** The headers a REST call sends: the same credentials a gRPC call of the same options sends. */
export function restHeaders(options?: CallOptions): Record<string, string> {
  return Object.fromEntries(Object.entries(metadataFor(options).toHttp2Headers()).map(([k, v]) => [k, String(v)]));
}

export async function rest(
  app: TestApp,
  method: string,
  path: string,
  options: { body?: unknown; raw?: string; auth?: CallOptions; headers?: Record<string, string> } = {},
): Promise<RestResponse> {
  const body = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  const res = await fetch(`${app.httpBase}${path}`, { method, body, headers: { ...restHeaders(options.auth), ...options.headers } });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** A query string as Envoy reads it: every value percent-encoded (Envoy does not turn `+` into a space). */
export function query(params: Record<string, string | number | boolean>): string {
  const pairs = Object.entries(params).map(([k, v]) => `${k}=${encodeURIComponent(String(v))}`);
  return pairs.length > 0 ? `?${pairs.join("&")}` : "";
}

export interface RestError {
  code: number;
  message: string;
  reason: string;
  metadata: Record<string, string>;
}

/** Asserts a REST error: the HTTP status, a JSON google.rpc.Status body with `code`, and its ErrorInfo reason. */
export function expectRestError(res: RestResponse, httpStatus: number, code: status, reason: string): RestError {
  assert.equal(res.status, httpStatus, `HTTP status (body: ${res.text})`);
  assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
  const body = res.json as { code: number; message: string; details: { "@type": string; reason: string; domain: string; metadata: Record<string, string> }[] };
  assert.equal(body.code, code, `code (body: ${res.text})`);
  const info = body.details.find((d) => d["@type"] === "type.googleapis.com/google.rpc.ErrorInfo");
  assert.ok(info, `no ErrorInfo in ${res.text}`);
  assert.equal(info.reason, reason);
  assert.equal(info.domain, "qod.v1");
  return { code: body.code, message: body.message, reason: info.reason, metadata: info.metadata };
}
