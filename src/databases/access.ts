// Who may choose the Postgres server a database's catalog lives on, or the credentials used
// there (hole 6 of issue 11). Naming a server makes the service connect to it, so a tenant admin
// could probe any host and port (the answer differs with what listens), and credentials on the
// shared server make a password-guessing oracle. Only superusers may set metastore pgHost,
// pgPort, pgUser or pgPassword, unless the server is on QOD_METASTORE_ALLOWED_HOSTS. Checked
// before any connection is attempted, so the answer never depends on what listens.
import type { Principal } from "../call/principal";
import { AppError } from "../errors";
import { canonicalMetastoreKey } from "./validate";

const SERVER_ACCESS_KEYS: ReadonlySet<string> = new Set(["pgHost", "pgPort", "pgUser", "pgPassword"]);

/** `host` and `host:port` as QOD_METASTORE_ALLOWED_HOSTS lists them (IPv6 in brackets), lowercased. */
function spellings(server: { host: string; port: number }): string[] {
  const host = server.host.toLowerCase();
  const bracketed = host.includes(":") ? `[${host}]` : host;
  return [host, bracketed, `${bracketed}:${server.port}`];
}

/**
 * Throws `superuser_required` when a caller who is not a superuser sets (to a non-empty value)
 * any of the keys that pick the server or its credentials, on a server not on `allowedHosts`.
 * `entries` are the metastore entries as given (any key spelling), secrets included.
 */
export function requireServerAccess(principal: Principal, allowedHosts: readonly string[], server: { host: string; port: number }, entries: Record<string, string>): void {
  if (principal.superuser) return;
  const sets = Object.entries(entries).some(([key, value]) => value.trim() !== "" && SERVER_ACCESS_KEYS.has(canonicalMetastoreKey(key) ?? ""));
  if (!sets || spellings(server).some((spelling) => allowedHosts.includes(spelling))) return;
  throw new AppError("superuser_required", "only a superuser may set metastore pgHost, pgPort, pgUser or pgPassword, unless the server is on the service's allow-list");
}
