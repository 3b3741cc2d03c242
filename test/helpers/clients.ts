// Promise clients over the generated grpc-js stubs, and assertions on rich error statuses.
import assert from "node:assert/strict";
import { credentials, makeGenericClientConstructor, Metadata, status, type ServiceDefinition, type ServiceError } from "@grpc/grpc-js";
import { BadRequest, ErrorInfo } from "../../gen/google/rpc/error_details";
import { Status } from "../../gen/google/rpc/status";
import * as authPb from "../../gen/qod/v1/auth";
import * as databasePb from "../../gen/qod/v1/database";
import * as poolPb from "../../gen/qod/v1/pool";
import * as supavisorPb from "../../gen/qod/v1/supavisor";
import * as tenantPb from "../../gen/qod/v1/tenant";
import { TEST_API_KEY } from "./app";

type RequestOf<M> = M extends { requestDeserialize: (bytes: Buffer) => infer R } ? R : never;
type ResponseOf<M> = M extends { responseSerialize: (value: infer R) => Buffer } ? R : never;
type DeepPartial<T> = T extends Date ? T : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

/** How a call authenticates: the static key by default, `{}` for none. */
export interface CallOptions {
  apiKey?: string;
  bearer?: string;
  headers?: Record<string, string>;
  deadlineMs?: number;
}

export type PromiseClient<D extends ServiceDefinition> = {
  [K in keyof D]: (request?: DeepPartial<RequestOf<D[K]>>, options?: CallOptions) => Promise<ResponseOf<D[K]>>;
};

export function metadataFor(options: CallOptions = { apiKey: TEST_API_KEY }): Metadata {
  const md = new Metadata();
  if (options.apiKey) md.set("x-api-key", options.apiKey);
  if (options.bearer) md.set("authorization", `Bearer ${options.bearer}`);
  for (const [k, v] of Object.entries(options.headers ?? {})) md.set(k, v);
  return md;
}

type Module = Record<string, unknown>;

function promiseClient<D extends ServiceDefinition>(definition: D, messages: Module, address: string): { client: PromiseClient<D>; close(): void } {
  const Ctor = makeGenericClientConstructor(definition, "client");
  const raw = new Ctor(address, credentials.createInsecure()) as unknown as Record<string, (...args: unknown[]) => unknown> & { close(): void };
  const client = {} as Record<string, unknown>;
  for (const key of Object.keys(definition)) {
    const typeName = `${key[0]?.toUpperCase()}${key.slice(1)}Request`;
    const type = messages[typeName] as { fromPartial(p: unknown): unknown };
    client[key] = (request: unknown = {}, options: CallOptions = { apiKey: TEST_API_KEY }) =>
      new Promise((resolve, reject) => {
        const callOptions = { deadline: Date.now() + (options.deadlineMs ?? 60_000) };
        raw[key].call(raw, type.fromPartial(request), metadataFor(options), callOptions, (err: ServiceError | null, res: unknown) =>
          err ? reject(err) : resolve(res),
        );
      });
  }
  return { client: client as PromiseClient<D>, close: () => raw.close() };
}

export interface Clients {
  tenants: PromiseClient<typeof tenantPb.TenantServiceService>;
  databases: PromiseClient<typeof databasePb.DatabaseServiceService>;
  auth: PromiseClient<typeof authPb.AuthServiceService>;
  pools: PromiseClient<typeof poolPb.PoolServiceService>;
  supavisor: PromiseClient<typeof supavisorPb.SupavisorServiceService>;
  close(): void;
}

export function clientsFor(address: string): Clients {
  const made = [
    promiseClient(tenantPb.TenantServiceService, tenantPb, address),
    promiseClient(databasePb.DatabaseServiceService, databasePb, address),
    promiseClient(authPb.AuthServiceService, authPb, address),
    promiseClient(poolPb.PoolServiceService, poolPb, address),
    promiseClient(supavisorPb.SupavisorServiceService, supavisorPb, address),
  ] as const;
  return {
    tenants: made[0].client,
    databases: made[1].client,
    auth: made[2].client,
    pools: made[3].client,
    supavisor: made[4].client,
    close: () => made.forEach((m) => m.close()),
  };
}

export interface DecodedError {
  code: status;
  message: string;
  reason: string;
  domain: string;
  violations: { field: string; description: string }[];
}

/** Decodes the google.rpc.Status a failed call carries in `grpc-status-details-bin`. */
export function decodeError(err: ServiceError): DecodedError {
  const [bin] = err.metadata?.get("grpc-status-details-bin") ?? [];
  assert.ok(Buffer.isBuffer(bin), `no grpc-status-details-bin on ${status[err.code]}: ${err.details}`);
  const rpcStatus = Status.decode(bin);
  const info = rpcStatus.details.find((d) => d.typeUrl.endsWith("google.rpc.ErrorInfo"));
  const bad = rpcStatus.details.find((d) => d.typeUrl.endsWith("google.rpc.BadRequest"));
  const errorInfo = info ? ErrorInfo.decode(info.value) : undefined;
  return {
    code: err.code,
    message: err.details,
    reason: errorInfo?.reason ?? "",
    domain: errorInfo?.domain ?? "",
    violations: bad ? BadRequest.decode(bad.value).fieldViolations : [],
  };
}

/** Awaits a call that must fail with `code` and `reason`; returns the decoded status. */
export async function expectError(call: Promise<unknown>, code: status, reason: string): Promise<DecodedError> {
  let caught: unknown;
  try {
    await call;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught, `expected ${status[code]} (${reason}), but the call succeeded`);
  const decoded = decodeError(caught as ServiceError);
  assert.equal(status[decoded.code], status[code], `code (message: ${decoded.message})`);
  assert.equal(decoded.reason, reason, `reason (message: ${decoded.message})`);
  assert.equal(decoded.domain, "qod.v1");
  return decoded;
}
