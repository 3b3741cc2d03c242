// Reading call metadata, and the one rule for request ids (the client's `x-request-id`, and the
// `requestId` / `Idempotency-Key` of a create).
import { randomUUID } from "node:crypto";
import type { Metadata } from "@grpc/grpc-js";

/** The first value of a metadata key, as a string. */
export function metadataValue(metadata: Metadata, key: string): string | undefined {
  const [value] = metadata.get(key);
  if (value === undefined) return undefined;
  return typeof value === "string" ? value : value.toString("utf8");
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** 1 to 128 letters, digits or `. _ : -`: safe in logs, headers and keys. */
export function isRequestId(value: string): boolean {
  return REQUEST_ID.test(value);
}

/** The call's request id: the client's `x-request-id` when it is a valid one, else a new UUID. */
export function requestIdOf(metadata: Metadata): string {
  const given = metadataValue(metadata, "x-request-id");
  return given !== undefined && isRequestId(given) ? given : randomUUID();
}
