// The text of PgBouncer 1.18's configuration: pgbouncer.ini and its auth_file. Pure functions.
//
// Quoting, as PgBouncer 1.18 parses it: the ini is line based (a value cannot hold a line break);
// inside a [databases] connection string a value is either bare (up to a space) or quoted with
// single quotes, '' standing for one quote, and may not be empty.
import type { EdgeUpstream, PoolMode, UpstreamTlsMode } from "./snapshot";

/** PgBouncer's fixed buffers (MAX_USERNAME, MAX_PASSWORD, MAX_DBNAME), less the terminator. */
const MAX_USER_BYTES = 127;
const MAX_PASSWORD_BYTES = 2047;
const MAX_DATABASE_BYTES = 63;

export interface EngineRoute {
  /** The PgBouncer database name (see routeName). */
  name: string;
  mode: PoolMode;
  poolSize: number;
  upstream: Pick<EdgeUpstream, "host" | "port" | "database" | "user" | "password">;
}

export interface EngineSettings {
  socketDir: string;
  port: number;
  authFile: string;
  /** Its admin console user (admin_users), reached only through the private socket. */
  adminUser: string;
  maxClientConn: number;
  /** Seconds a client may wait for its first server login (client_login_timeout). */
  clientLoginTimeoutSec: number;
  tls: { mode: UpstreamTlsMode; caFile?: string };
}

/** A route's values cannot be written to the ini (the message says which, never the value). */
export class RouteConfigError extends Error {}

/** The `[databases]` line of a route; throws RouteConfigError for values PgBouncer cannot take. */
export function routeLine(route: EngineRoute): string {
  const { host, port, database, user, password } = route.upstream;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RouteConfigError("upstream port out of range");
  if (!Number.isInteger(route.poolSize) || route.poolSize < 1) throw new RouteConfigError("pool size must be a positive integer");
  const pairs = [
    `host=${quote("host", host, 255)}`,
    `port=${port}`,
    `dbname=${quote("database", database, MAX_DATABASE_BYTES)}`,
    `user=${quote("user", user, MAX_USER_BYTES)}`,
    // PgBouncer refuses an empty value; without password= the forced user has none.
    ...(password === "" ? [] : [`password=${quote("password", password, MAX_PASSWORD_BYTES)}`]),
    `pool_size=${route.poolSize}`,
    `pool_mode=${route.mode}`,
  ];
  return `${route.name} = ${pairs.join(" ")}`;
}

function quote(what: string, value: string, maxBytes: number): string {
  if (value === "") throw new RouteConfigError(`upstream ${what} is empty`);
  if (/[\0\r\n]/.test(value)) throw new RouteConfigError(`upstream ${what} contains a line break or NUL`);
  if (Buffer.byteLength(value) > maxBytes) throw new RouteConfigError(`upstream ${what} is longer than ${maxBytes} bytes`);
  return `'${value.replaceAll("'", "''")}'`;
}

/** pgbouncer.ini for one engine. `routeLines` come from routeLine(). */
export function renderIni(settings: EngineSettings, routeLines: readonly string[]): string {
  const tls = [`server_tls_sslmode = ${settings.tls.mode}`];
  if (settings.tls.caFile) tls.push(`server_tls_ca_file = ${settings.tls.caFile}`);
  return [
    "; Written by the QOD edge; rewritten on every change. Do not edit.",
    "[databases]",
    ...routeLines,
    "",
    "[pgbouncer]",
    // No TCP listener: only the private unix socket, which only the edge can reach (0700 directory).
    "listen_addr =",
    `listen_port = ${settings.port}`,
    `unix_socket_dir = ${settings.socketDir}`,
    "unix_socket_mode = 0600",
    // The edge authenticates clients itself; each route forces its upstream user and password.
    "auth_type = trust",
    `auth_file = ${settings.authFile}`,
    `admin_users = ${settings.adminUser}`,
    "ignore_startup_parameters = extra_float_digits,options",
    `max_client_conn = ${settings.maxClientConn}`,
    `client_login_timeout = ${settings.clientLoginTimeoutSec}`,
    // After a failed server login, try again soon: a fixed credential should bite quickly.
    "server_login_retry = 3",
    ...tls,
    "logfile =",
    "pidfile =",
    "syslog = 0",
    "log_connections = 0",
    "log_disconnections = 0",
    "log_pooler_errors = 1",
    "stats_period = 60",
    "",
  ].join("\n");
}

/** auth_file: with auth_type = trust PgBouncer still wants each login user listed (no password needed). */
export const renderAuthFile = (users: readonly string[]): string => users.map((u) => `"${u}" ""\n`).join("");
