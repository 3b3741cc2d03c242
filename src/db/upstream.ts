// How the service logs in to an upstream Postgres server as one of its users (a Supavisor tenant's
// live check and auth_query): its address family and TLS settings as the data plane's engine uses
// them, and short timeouts.
import { lookup } from "node:dns/promises";
import type { ClientConfig } from "pg";
import type { IpVersion, UpstreamTlsMode } from "../data-plane";

export interface UpstreamAddress {
  host: string;
  port: number;
  database: string;
  tls: UpstreamTlsMode;
  /** PEM; with `verify-full`. */
  ca: string | null;
  ipVersion: IpVersion;
}

/** node-postgres settings for a login as `user`; `v4`/`v6` connect to that family, TLS still checks the given name. */
export async function upstreamClientConfig(upstream: UpstreamAddress, user: string, password: string, timeoutMs: number): Promise<ClientConfig> {
  const host = upstream.ipVersion === "auto" ? upstream.host : (await lookup(upstream.host, { family: upstream.ipVersion === "v4" ? 4 : 6 })).address;
  const ssl =
    upstream.tls === "disable"
      ? false
      : upstream.tls === "require"
        ? { rejectUnauthorized: false }
        : { rejectUnauthorized: true, ca: upstream.ca ?? undefined, servername: upstream.host };
  return {
    host,
    port: upstream.port,
    database: upstream.database,
    user,
    password,
    ssl,
    connectionTimeoutMillis: timeoutMs,
    statement_timeout: timeoutMs,
    query_timeout: timeoutMs,
    application_name: "qod",
  };
}
