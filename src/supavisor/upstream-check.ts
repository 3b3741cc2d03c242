// The live check of a Supavisor tenant's users against its upstream, before they are stored: each
// user logs in (with the upstream's TLS settings and address family) and runs `select version()`;
// with require_user false the manager also runs the auth_query. A failure names the user and what
// went wrong, in our words: never a password, a stack, nor the query's text.
import { Client } from "pg";
import type { Logger } from "pino";
import { upstreamClientConfig } from "../db/upstream";
import { AppError, invalid, type FieldViolation } from "../errors";
import type { TenantSettings } from "./validate";

/** How long a login and its statements may take, each. */
const CHECK_TIMEOUT_MS = 5_000;

/** The user to try, and where it stands in the request (for the violation's field). */
export interface Login {
  dbUser: string;
  password: string;
  field: string;
}

/** `PostgreSQL 15.1 on x86_64…` → `15.1`; `PostgreSQL 14.6 (Debian 14.6-1) on …` → `14.6 (Debian 14.6-1)` (Supavisor's rule). */
export function serverVersion(version: string): string {
  return version.replace(/^PostgreSQL /, "").replace(/ on .*$/s, "").trim();
}

/** Why a login or a statement failed, as the client may read it. */
function describe(err: unknown): string {
  const e = err as { code?: string; message?: string };
  switch (e.code) {
    case "28P01":
      return "the upstream refused the password";
    case "28000":
      return "the upstream refused the login (its pg_hba.conf may require TLS or another method)";
    case "3D000":
      return "the upstream has no such database";
    case "ECONNREFUSED":
      return "the upstream refused the connection (nothing listens there?)";
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "the upstream's host name does not resolve";
    case "ETIMEDOUT":
      return "the upstream did not answer in time";
    case "42501":
      return "the auth_query is not allowed for this user";
    case "42601":
    case "42P01":
    case "42703":
    case "42883":
      return "the auth_query is not a query the upstream can run";
  }
  const message = e.message ?? "";
  if (/timeout/i.test(message)) return "the upstream did not answer in time";
  if (/does not support SSL/i.test(message)) return "the upstream does not accept TLS";
  if (/certificate|self.signed|unable to verify|altname|SSL|TLS/i.test(message)) return "the upstream's TLS certificate could not be verified";
  return "the upstream could not be reached";
}

/**
 * Logs each user in and returns the upstream's server version; throws INVALID_ARGUMENT
 * (`invalid_upstream`) naming the first user that failed.
 */
export async function checkUpstream(settings: TenantSettings, logins: readonly Login[], logger: Logger): Promise<string> {
  let version = "";
  const manager = settings.requireUser ? undefined : settings.users.find((user) => user.isManager)?.dbUser;
  for (const login of logins) {
    let client: Client | undefined;
    try {
      client = new Client(await upstreamClientConfig(settings.upstream, login.dbUser, login.password, CHECK_TIMEOUT_MS));
      client.on("error", () => {}); // a connection lost after the check is of no interest
      await client.connect();
      const { rows } = await client.query<{ version: string }>("select version() as version");
      version = serverVersion(rows[0]?.version ?? "");
      if (login.dbUser === manager && settings.authQuery !== null) {
        await client.query(settings.authQuery, [login.dbUser]);
      }
    } catch (err) {
      const code = (err as { code?: string }).code;
      logger.info({ upstream: `${settings.upstream.host}:${settings.upstream.port}`, user: login.dbUser, code }, "upstream check failed");
      const violation: FieldViolation = { field: login.field, reason: "invalid_upstream", description: `could not log in as "${login.dbUser}": ${describe(err)}` };
      throw invalid([violation]);
    } finally {
      await client?.end().catch(() => {});
    }
  }
  if (version === "") throw new AppError("invalid_upstream", "the upstream did not say its version");
  return version;
}
