// Secrets at rest: AES-256-GCM under QOD_VAULT_ENC_KEY, each ciphertext bound to the row it belongs
// to. Every secret the state keeps (database metastore and object-store secrets, pool passwords) is
// sealed here; none is ever returned or logged.
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** Seals and opens values; `context` (the owning row's id) is authenticated, so a ciphertext cannot be moved to another row. */
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
