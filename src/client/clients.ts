// Promise clients over the generated grpc-js clients (gen/qod/v1), on one shared channel, that
// send the caller's credential and a deadline with every call. This is the package's client
// library (docs/client-library.md): it imports nothing of the service itself.
import { Channel, credentials, Metadata, type ChannelCredentials, type ChannelOptions, type Client, type ClientOptions, type ServiceError } from "@grpc/grpc-js";
import * as authPb from "../../gen/qod/v1/auth";
import * as databasePb from "../../gen/qod/v1/database";
import * as poolPb from "../../gen/qod/v1/pool";
import * as supavisorPb from "../../gen/qod/v1/supavisor";
import * as tenantPb from "../../gen/qod/v1/tenant";

/** The default deadline of a call, when neither the connection nor the call sets one. */
export const DEFAULT_DEADLINE_MS = 30_000;

export interface ConnectOptions {
  /** `host:port` of the gRPC server (a grpc-js target: `dns:`, `unix:` and `ipv6` forms work too). */
  address: string;
  /** Sent as `x-api-key`: the static `QOD_API_KEY`, a session token from Login, or a personal access token. */
  apiKey?: string;
  /** Sent as `authorization: Bearer`: a session token or a service JWT. At most one of `apiKey` and `token`. */
  token?: string;
  /** TLS with the system's roots (`true`) or the given CA certificates (PEM); plaintext when absent or false. */
  tls?: boolean | { ca?: Buffer };
  /** Deadline of every call, unless the call sets its own. Default 30 s. */
  deadlineMs?: number;
  /** Extra grpc-js channel options (keepalive, message sizes, ...). */
  channelOptions?: ChannelOptions;
}

/** Per-call options. */
export interface CallOptions {
  /** This call's deadline, instead of the connection's. */
  deadlineMs?: number;
  /** Extra request metadata, e.g. `{ "idempotency-key": "…" }`. */
  metadata?: Record<string, string>;
  /** Cancels the call (it then fails with CANCELLED). */
  signal?: AbortSignal;
}

// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type -- ts-proto's own DeepPartial leaves functions as they are
type Builtin = Date | Function | Uint8Array | string | number | boolean | undefined;
/** A message with every field optional, as the generated `fromPartial` takes it. */
export type DeepPartial<T> = T extends Builtin
  ? T
  : T extends readonly (infer U)[]
    ? DeepPartial<U>[]
    : T extends object
      ? { [K in keyof T]?: DeepPartial<T[K]> }
      : T;

/** The method table of a generated `…ServiceService` (ts-proto, outputServices=grpc-js). */
export type GeneratedServiceDefinition = Record<
  string,
  {
    path: string;
    requestStream: false;
    responseStream: false;
    requestSerialize: (value: never) => Buffer;
    requestDeserialize: (bytes: Buffer) => unknown;
    responseSerialize: (value: never) => Buffer;
    responseDeserialize: (bytes: Buffer) => unknown;
  }
>;

type RequestOf<M> = M extends { requestSerialize: (value: infer R) => Buffer } ? R : never;
type ResponseOf<M> = M extends { responseDeserialize: (bytes: Buffer) => infer R } ? R : never;

/** One promise-returning function per RPC of a service, named as in the generated client (`createTenant`). */
export type PromiseClient<D extends GeneratedServiceDefinition> = {
  [K in keyof D]: (request?: DeepPartial<RequestOf<D[K]>>, options?: CallOptions) => Promise<ResponseOf<D[K]>>;
};

/** A generated service: its client constructor (whose `service` is the definition) and its module. */
export interface GeneratedService<D extends GeneratedServiceDefinition> {
  Client: { new (address: string, credentials: ChannelCredentials, options?: Partial<ClientOptions>): Client; service: D };
  /** The generated module, whose `<Method>Request.fromPartial` completes a partial request. */
  messages: object;
}

export const TENANT_SERVICE: GeneratedService<typeof tenantPb.TenantServiceService> = { Client: tenantPb.TenantServiceClient, messages: tenantPb };
export const DATABASE_SERVICE: GeneratedService<typeof databasePb.DatabaseServiceService> = {
  Client: databasePb.DatabaseServiceClient,
  messages: databasePb,
};
export const AUTH_SERVICE: GeneratedService<typeof authPb.AuthServiceService> = { Client: authPb.AuthServiceClient, messages: authPb };
export const POOL_SERVICE: GeneratedService<typeof poolPb.PoolServiceService> = { Client: poolPb.PoolServiceClient, messages: poolPb };
export const SUPAVISOR_SERVICE: GeneratedService<typeof supavisorPb.SupavisorServiceService> = {
  Client: supavisorPb.SupavisorServiceClient,
  messages: supavisorPb,
};

/** A channel to one server; `client()` makes promise clients of generated services on it. */
export interface Connection {
  readonly address: string;
  client<D extends GeneratedServiceDefinition>(service: GeneratedService<D>): PromiseClient<D>;
  /** Closes the channel; calls still running fail with UNAVAILABLE or CANCELLED. */
  close(): void;
}

export interface QodClients {
  tenants: PromiseClient<typeof tenantPb.TenantServiceService>;
  databases: PromiseClient<typeof databasePb.DatabaseServiceService>;
  auth: PromiseClient<typeof authPb.AuthServiceService>;
  pools: PromiseClient<typeof poolPb.PoolServiceService>;
  supavisor: PromiseClient<typeof supavisorPb.SupavisorServiceService>;
  close(): void;
}

// What grpc-js accepts in an ASCII metadata value (and what an HTTP/2 header may hold).
const HEADER_VALUE = /^[\x20-\x7e]*$/;

function credentialMetadata(options: ConnectOptions): Record<string, string> {
  if (options.apiKey !== undefined && options.token !== undefined) throw new TypeError("give apiKey or token, not both");
  // The message never repeats the value: it is a secret.
  const check = (name: string, value: string) => {
    if (value === "" || !HEADER_VALUE.test(value)) throw new TypeError(`${name} must be non-empty printable ASCII`);
    return value;
  };
  if (options.apiKey !== undefined) return { "x-api-key": check("apiKey", options.apiKey) };
  if (options.token !== undefined) return { authorization: `Bearer ${check("token", options.token)}` };
  return {};
}

function channelCredentials(tls: ConnectOptions["tls"]): ChannelCredentials {
  if (!tls) return credentials.createInsecure();
  return credentials.createSsl(tls === true ? null : (tls.ca ?? null));
}

function checkDeadline(name: string, ms: number): number {
  if (!Number.isFinite(ms) || ms <= 0) throw new RangeError(`${name} must be a positive number of milliseconds`);
  return ms;
}

const capitalized = (name: string) => `${name.charAt(0).toUpperCase()}${name.slice(1)}`;

/** Opens a channel to `options.address`; nothing is sent until the first call. */
export function connect(options: ConnectOptions): Connection {
  const fixedMetadata = credentialMetadata(options);
  const defaultDeadlineMs = checkDeadline("deadlineMs", options.deadlineMs ?? DEFAULT_DEADLINE_MS);
  const creds = channelCredentials(options.tls);
  const channel = new Channel(options.address, creds, options.channelOptions ?? {});

  function client<D extends GeneratedServiceDefinition>(service: GeneratedService<D>): PromiseClient<D> {
    const raw = new service.Client(options.address, creds, { channelOverride: channel }) as unknown as Record<string, (...args: unknown[]) => unknown>;
    const calls: Record<string, unknown> = {};
    for (const method of Object.keys(service.Client.service)) {
      // buf's STANDARD lint names every request `<Rpc>Request`; its fromPartial fills the defaults.
      const requestType = (service.messages as Record<string, { fromPartial?: (partial: unknown) => unknown }>)[`${capitalized(method)}Request`];
      const fromPartial = requestType?.fromPartial;
      if (!fromPartial) throw new TypeError(`the generated module has no ${capitalized(method)}Request`);
      calls[method] = (request: unknown = {}, call: CallOptions = {}) =>
        new Promise((resolve, reject) => {
          const metadata = new Metadata();
          for (const [key, value] of Object.entries({ ...call.metadata, ...fixedMetadata })) metadata.set(key, value);
          const deadline = Date.now() + checkDeadline("deadlineMs", call.deadlineMs ?? defaultDeadlineMs);
          const pending = raw[method].call(raw, fromPartial(request), metadata, { deadline }, (err: ServiceError | null, response: unknown) => {
            call.signal?.removeEventListener("abort", cancel);
            if (err) reject(err);
            else resolve(response);
          }) as { cancel(): void };
          const cancel = () => pending.cancel();
          if (call.signal?.aborted) cancel();
          else call.signal?.addEventListener("abort", cancel, { once: true });
        });
    }
    return calls as PromiseClient<D>;
  }

  return { address: options.address, client, close: () => channel.close() };
}

/** The QOD services on one channel. */
export function createClients(options: ConnectOptions): QodClients {
  const connection = connect(options);
  return {
    tenants: connection.client(TENANT_SERVICE),
    databases: connection.client(DATABASE_SERVICE),
    auth: connection.client(AUTH_SERVICE),
    pools: connection.client(POOL_SERVICE),
    supavisor: connection.client(SUPAVISOR_SERVICE),
    close: () => connection.close(),
  };
}
