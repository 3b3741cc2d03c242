// Secrets of a database's metastore and object store: which entries are secret, and how they are
// kept at rest (sealed by src/vault.ts). They are never returned and never logged.
import { z } from "zod";
import type { Vault } from "../vault";

/**
 * Secret entries, matched case-insensitively: pgPassword, the object stores' keys
 * (s3_secret_access_key, azure_account_key, gcs_hmac_secret, `secret`, session tokens,
 * connection strings) and anything else named like a password, secret or token.
 */
const SECRET_KEY = /password|secret|token|account_key|connection_string/i;

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/** The secret entries of both maps, kept together in the row's `secrets` column. */
export const Secrets = z.object({ metastore: z.record(z.string()), objectStore: z.record(z.string()) });
export type Secrets = z.infer<typeof Secrets>;

const NO_SECRETS: Secrets = Object.freeze({ metastore: {}, objectStore: {} });

/** Splits a map into its plain entries (stored as is) and its secret ones. */
export function splitSecrets(entries: Record<string, string>): { plain: Record<string, string>; secret: Record<string, string> } {
  const plain: Record<string, string> = {};
  const secret: Record<string, string> = {};
  for (const [key, value] of Object.entries(entries)) (isSecretKey(key) ? secret : plain)[key] = value;
  return { plain, secret };
}

/** The ciphertext for the `secrets` column; null when there is nothing secret. */
export function sealSecrets(vault: Vault, databaseId: string, secrets: Secrets): Buffer | null {
  if (Object.keys(secrets.metastore).length === 0 && Object.keys(secrets.objectStore).length === 0) return null;
  return vault.seal(JSON.stringify(secrets), databaseId);
}

export function openSecrets(vault: Vault, databaseId: string, sealed: Buffer | null): Secrets {
  return sealed === null ? NO_SECRETS : Secrets.parse(JSON.parse(vault.open(sealed, databaseId)));
}
