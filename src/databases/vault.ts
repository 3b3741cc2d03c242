// Secrets of a database's metastore and object store: which entries are secret, and how they are
// kept at rest (AES-256-GCM under QOD_VAULT_ENC_KEY). They are never returned and never logged.
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { z } from "zod";

const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** Seals and opens values; `context` (the database id) is authenticated, so a ciphertext cannot be moved to another row. */
export interface Vault {
  seal(plaintext: string, context: string): Buffer;
  open(sealed: Buffer, context: string): string;
}

/** `key` is QOD_VAULT_ENC_KEY: exactly 32 bytes, used as the AES-256 key. */
export function createVault(key: string | undefined): Vault {
  const keyBytes = Buffer.from(key ?? "", "utf8");
  if (keyBytes.length !== 32) throw new Error("QOD_VAULT_ENC_KEY must be exactly 32 bytes");
  return {
    seal(plaintext, context) {
      const iv = randomBytes(IV_BYTES); // fresh per sealing: GCM must never reuse an IV under one key
      const cipher = createCipheriv("aes-256-gcm", keyBytes, iv);
      cipher.setAAD(Buffer.from(context, "utf8"));
      const ciphertext = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
      return Buffer.concat([Buffer.of(VERSION), iv, cipher.getAuthTag(), ciphertext]);
    },
    open(sealed, context) {
      if (sealed.length < 1 + IV_BYTES + TAG_BYTES || sealed[0] !== VERSION) throw new Error("unknown sealed secret format");
      const iv = sealed.subarray(1, 1 + IV_BYTES);
      const tag = sealed.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES);
      const decipher = createDecipheriv("aes-256-gcm", keyBytes, iv);
      decipher.setAAD(Buffer.from(context, "utf8"));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(sealed.subarray(1 + IV_BYTES + TAG_BYTES)), decipher.final()]).toString("utf8");
    },
  };
}

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
