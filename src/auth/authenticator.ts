// Turns a call's credential into a Principal. The static QOD_API_KEY (x-api-key) is compared
// in constant time.
import { createHash, timingSafeEqual } from "node:crypto";
import type { Authenticator } from "../server/middleware/authenticate";
import { metadataValue } from "../server/context";
import { API_KEY_PRINCIPAL } from "./principal";

const digest = (value: string) => createHash("sha256").update(value).digest();

/** Constant-time string equality (hashing first makes the lengths equal). */
export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

export function createAuthenticator(options: { apiKey: string | undefined }): Authenticator {
  // The configured key's digest is computed once, not on every call.
  const apiKeyDigest = options.apiKey ? digest(options.apiKey) : undefined;
  return {
    async authenticate(ctx) {
      const key = metadataValue(ctx.metadata, "x-api-key");
      if (key && apiKeyDigest && timingSafeEqual(digest(key), apiKeyDigest)) return API_KEY_PRINCIPAL;
      return undefined;
    },
  };
}
