// Throttles password checks (SPEC §5). Every attempt is reserved before its password is checked,
// in one statement that counts it and answers whether it may go on, so concurrent attempts
// cannot slip past the limit between a check and the count: at most the limit of checks run
// per window, however many arrive at once. Counts live in the state database (login_failures)
// so replicas share them.
//
// Three keys per attempt, as the large providers count:
// - the (account, source) pair, limit QOD_LOGIN_MAX_FAILURES: guessing one account from one place;
// - the source alone, the same limit: spraying many accounts from one place;
// - the account alone, ACCOUNT_CEILING_FACTOR times the limit, counted only for attempts the
//   first two let through: bounds guessing spread over many sources, while a source with no
//   recent failures still gets in when another source hammered the account.
// A right password clears the pair and the account, and gives the source back its attempt (its
// earlier failures stay, so one valid account cannot reset a sprayer's budget).
import type { DatabasePool } from "slonik";
import type { CallContext } from "../call/context";
import type { ClientAddress } from "../call/client-address";
import { AppError } from "../errors";
import { clearLoginAttempt, releaseLoginAttempt, reserveLoginAttempt, type AttemptKeys } from "./queries";

export const ACCOUNT_CEILING_FACTOR = 10;

/** One reserved attempt: counted as a failure unless it ends otherwise. */
export interface LoginAttempt {
  /** The password was right. */
  succeeded(): Promise<void>;
  /** No password was checked after all (the work queue was full, the state database failed): the attempt is given back. */
  release(): Promise<void>;
}

export interface LoginThrottle {
  /** Reserves an attempt on `username` of realm `tenant` (null: superusers); throws `rate_limited` when a key is over its limit. */
  reserve(ctx: Pick<CallContext, "peer" | "metadata">, tenant: string | null, username: string): Promise<LoginAttempt>;
}

const rateLimited = () => new AppError("rate_limited", "too many failed attempts; try again later");

export function createLoginThrottle(
  pool: DatabasePool,
  clientAddress: ClientAddress,
  limits: { maxFailures: number; windowSec: number },
  onRefused: () => void,
): LoginThrottle {
  const { maxFailures, windowSec } = limits;
  return {
    async reserve(ctx, tenant, username) {
      // Usernames are unique case-insensitively (migration 0008): one account, one count.
      const account = `user:${tenant ?? ""}:${username.toLowerCase()}`;
      const source = `source:${clientAddress(ctx)}`;
      const keys: AttemptKeys = { pair: `pair:${account}|${source}`, source, account };
      const admitted = await reserveLoginAttempt(pool, keys, { perSource: maxFailures, perAccount: maxFailures * ACCOUNT_CEILING_FACTOR }, windowSec);
      if (!admitted) {
        onRefused();
        throw rateLimited();
      }
      return {
        succeeded: () => clearLoginAttempt(pool, keys),
        async release() {
          try {
            await releaseLoginAttempt(pool, keys);
          } catch {
            // Best effort: the count only errs on the safe side, and ends with its window.
          }
        },
      };
    },
  };
}
