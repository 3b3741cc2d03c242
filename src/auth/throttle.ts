// Throttles failed password checks per account and per source address (SPEC §5). Counts live in
// the state database (login_failures) so replicas share them; the check runs before bcrypt, so
// a blocked caller costs no CPU.
import { isIP } from "node:net";
import type { DatabasePool } from "slonik";
import { AppError } from "../errors";
import type { CallContext } from "../call/context";
import { metadataValue } from "../call/metadata";
import { clearLoginFailures, isLoginThrottled, recordLoginFailure } from "./queries";

export interface ThrottleKeys {
  account: string;
  source: string;
}

const LOOPBACK = /^(127\.|::1$|::ffff:127\.)/;

/** grpc-js gives `address:port` for TCP peers (IPv6 without brackets); keeps the address. */
function peerAddress(peer: string): string {
  const host = peer.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1");
  return isIP(host) ? host : peer;
}

/**
 * The caller's address. A call from loopback that carries `x-forwarded-for` came through a
 * proxy on this host (Envoy beside the service): its last entry is the address that proxy saw.
 * Otherwise every REST client would share the proxy's one counter. (The embedded JSON gateway
 * calls in-process with the HTTP client's own address as the peer.)
 */
export function sourceAddress(ctx: Pick<CallContext, "peer" | "metadata">): string {
  const peer = peerAddress(ctx.peer);
  if (!LOOPBACK.test(peer)) return peer;
  const forwarded = metadataValue(ctx.metadata, "x-forwarded-for")?.split(",").at(-1)?.trim();
  return forwarded && isIP(forwarded) ? forwarded : peer;
}

/** `tenant` null is the superuser realm. */
export function throttleKeys(ctx: Pick<CallContext, "peer" | "metadata">, tenant: string | null, username: string): ThrottleKeys {
  return { account: `user:${tenant ?? ""}:${username}`, source: `source:${sourceAddress(ctx)}` };
}

export interface LoginThrottle {
  /** Throws RESOURCE_EXHAUSTED (`rate_limited`) while either key is over the limit. */
  check(keys: ThrottleKeys): Promise<void>;
  failed(keys: ThrottleKeys): Promise<void>;
  /** A right password clears the account's count; the source's stays, so one valid account
   * cannot reset a sprayer's budget. */
  succeeded(keys: ThrottleKeys): Promise<void>;
}

export function createLoginThrottle(pool: DatabasePool, limits: { maxFailures: number; windowSec: number }): LoginThrottle {
  return {
    async check(keys) {
      if (await isLoginThrottled(pool, [keys.account, keys.source], limits.maxFailures, limits.windowSec)) {
        throw new AppError("rate_limited", "too many failed attempts; try again later");
      }
    },
    failed: (keys) => recordLoginFailure(pool, [keys.account, keys.source], limits.windowSec),
    succeeded: (keys) => clearLoginFailures(pool, keys.account),
  };
}
