// Every FATAL the edge sends, in one place: SQLSTATE and wording. The README's table lists them.
// Messages name only what the client itself sent or is entitled to know; before authentication
// succeeds nothing reveals whether a tenant, a user or a password was wrong.
import { errorResponse } from "./protocol";

export interface Fatal {
  code: string;
  message: string;
  detail?: string;
}

const q = (name: string): string => `"${name}"`;

export const fatal = {
  // Startup packet and protocol.
  protocol: (code: string, message: string): Fatal => ({ code, message }),
  noUser: (): Fatal => ({ code: "28000", message: "no PostgreSQL user name specified in startup packet" }),
  noTenant: (user: string): Fatal => ({
    code: "28000",
    message: `no tenant in user name ${q(user)}: connect as "<user>.<tenant>" or with options=reference=<tenant>`,
  }),
  replication: (): Fatal => ({ code: "0A000", message: "replication connections are not supported by the pooler" }),
  handshakeTimeout: (): Fatal => ({ code: "08006", message: "canceling authentication due to timeout" }),
  tooManyConnections: (): Fatal => ({ code: "53300", message: "sorry, too many clients already" }),
  internal: (): Fatal => ({ code: "XX000", message: "internal error in the pooler" }),
  shuttingDown: (): Fatal => ({ code: "57P01", message: "terminating connection because the pooler is shutting down" }),

  // Authentication.
  authFailed: (user: string): Fatal => ({ code: "28P01", message: `password authentication failed for user ${q(user)}` }),
  saslMechanism: (): Fatal => ({ code: "08P01", message: "client selected an invalid SASL authentication mechanism" }),
  saslExpected: (): Fatal => ({ code: "08P01", message: "expected SASL response" }),
  roleNotRegistered: (user: string, tenant: string): Fatal => ({
    code: "28000",
    message: `role ${q(user)} must be registered as a user of tenant ${q(tenant)} to connect through the pooler`,
  }),

  // Checks after authentication, in the order they run.
  banned: (reason: string): Fatal => ({ code: "28000", message: `(EBANNED) tenant is banned: ${reason}` }),
  tenantDisabled: (tenant: string): Fatal => ({ code: "28000", message: `tenant ${q(tenant)} is disabled` }),
  poolDisabled: (pool: string, tenant: string): Fatal => ({ code: "55000", message: `pool ${q(pool)} of tenant ${q(tenant)} is disabled` }),
  sslRequired: (): Fatal => ({ code: "28000", message: "SSL connection is required" }),
  addressNotAllowed: (address: string, tenant: string): Fatal => ({
    code: "28000",
    message: `address ${q(address)} is not allowed to connect to tenant ${q(tenant)}`,
  }),
  tooManyClients: (pool: string, tenant: string, max: number): Fatal => ({
    code: "53300",
    message: `too many clients for pool ${q(pool)} of tenant ${q(tenant)} (max_clients ${max})`,
  }),
  wrongDatabase: (database: string, pool: string, expected: string): Fatal => ({
    code: "3D000",
    message: `database ${q(database)} does not exist`,
    detail: `pool ${q(pool)} serves database ${q(expected)}`,
  }),

  // Reaching the engine.
  upstreamMisconfigured: (pool: string, tenant: string): Fatal => ({
    code: "08006",
    message: `pool ${q(pool)} of tenant ${q(tenant)} has an upstream configuration the pooler cannot use`,
  }),
  upstreamUnavailable: (): Fatal => ({ code: "08006", message: "could not connect to the upstream database" }),
  poolerLost: (): Fatal => ({ code: "08006", message: "lost the connection to the pooler" }),

  // Open sessions ended by the control plane.
  bannedSession: (reason: string): Fatal => ({ code: "57P01", message: `(EBANNED) tenant is banned: ${reason}` }),
  terminated: (): Fatal => ({ code: "57P01", message: "terminating connection due to administrator command" }),
  upstreamChanged: (pool: string, tenant: string): Fatal => ({
    code: "57P01",
    message: `terminating connection because the upstream of pool ${q(pool)} of tenant ${q(tenant)} changed`,
  }),
  removed: (pool: string, tenant: string): Fatal => ({
    code: "57P01",
    message: `terminating connection because pool ${q(pool)} of tenant ${q(tenant)} was removed`,
  }),
} as const;

/** The ErrorResponse bytes of a FATAL. */
export const fatalMessage = (f: Fatal): Buffer => errorResponse({ severity: "FATAL", ...f });
