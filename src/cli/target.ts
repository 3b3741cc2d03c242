// Which server a command talks to, over what, and with which credential, from the global
// flags, the environment and the stored session, in the documented order of precedence.
import { readFileSync } from "node:fs";
import path from "node:path";
import type { ConnectOptions } from "../client/clients";
import type { StoredSession } from "./session-store";
import { UsageError } from "./usage-error";

export const DEFAULT_SERVER = "127.0.0.1:50051";

/** The global flags that choose the target. */
export interface TargetFlags {
  server?: string;
  apiKey?: string;
  token?: string;
  tls?: boolean;
  ca?: string;
}

export type CredentialSource = "flag" | "environment" | "session" | "none";

export interface Target {
  address: string;
  tls: boolean;
  /** Absolute path of the CA file, when one is used. */
  ca?: string;
  credential: Pick<ConnectOptions, "apiKey" | "token">;
  credentialSource: CredentialSource;
}

// A gRPC target: host:port, [v6]:port, dns:/unix:/ipv4: forms. No spaces or controls, bounded.
const SERVER = /^[\x21-\x7e]{1,1024}$/;

function checkServer(server: string, where: string): string {
  if (!SERVER.test(server)) throw new UsageError(`${where}: expected host:port`);
  return server;
}

/**
 * Server: --server > QOD_SERVER > the stored session's > 127.0.0.1:50051. Credential: --api-key >
 * QOD_API_KEY > --token > the stored session's token, which is only ever sent to its own server.
 * TLS: --ca or --tls, else as at login when talking to the session's server, else plaintext.
 */
export function resolveTarget(flags: TargetFlags, env: NodeJS.ProcessEnv, session: StoredSession | undefined): Target {
  const address =
    flags.server !== undefined
      ? checkServer(flags.server, "--server")
      : env.QOD_SERVER
        ? checkServer(env.QOD_SERVER, "QOD_SERVER")
        : (session?.server ?? DEFAULT_SERVER);
  const ownSession = session !== undefined && session.server === address ? session : undefined;

  let tls = false;
  let ca: string | undefined;
  if (flags.ca !== undefined) {
    tls = true;
    ca = path.resolve(flags.ca);
  } else if (flags.tls) {
    tls = true;
  } else if (ownSession) {
    tls = ownSession.tls;
    ca = ownSession.ca;
  }

  if (flags.apiKey !== undefined) return { address, tls, ca, credential: { apiKey: flags.apiKey }, credentialSource: "flag" };
  if (env.QOD_API_KEY) return { address, tls, ca, credential: { apiKey: env.QOD_API_KEY }, credentialSource: "environment" };
  if (flags.token !== undefined) return { address, tls, ca, credential: { token: flags.token }, credentialSource: "flag" };
  if (ownSession) return { address, tls, ca, credential: { token: ownSession.token }, credentialSource: "session" };
  return { address, tls, ca, credential: {}, credentialSource: "none" };
}

/** The grpc-js TLS option of a target; reads the CA file. */
export function tlsOption(target: Pick<Target, "tls" | "ca">): ConnectOptions["tls"] {
  if (!target.tls) return false;
  if (target.ca === undefined) return true;
  try {
    return { ca: readFileSync(target.ca) };
  } catch (err) {
    throw new UsageError(`cannot read the CA file ${target.ca}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
