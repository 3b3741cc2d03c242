// A response object that many calls return as it is (the tenant cache's entries). It is frozen,
// so no call can change what another call sends, and the transport may encode it once and reuse
// the bytes (server/call-definition.ts). Only objects made here get that treatment.

const shared = new WeakSet<object>();

function deepFreeze(value: unknown): void {
  if (typeof value !== "object" || value === null || Object.isFrozen(value) || value instanceof Date) return;
  Object.freeze(value);
  for (const child of Object.values(value)) deepFreeze(child);
}

/** Freezes `value` (deeply; a Date inside stays a Date) and marks it shared. */
export function sharedResponse<T extends object>(value: T): T {
  deepFreeze(value);
  shared.add(value);
  return value;
}

export function isSharedResponse(value: unknown): value is object {
  return typeof value === "object" && value !== null && shared.has(value);
}
