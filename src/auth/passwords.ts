// bcrypt hashing (bcryptjs). The work factor is configurable so tests stay fast; a hash keeps
// its own cost, so raising it later only affects new hashes.
//
// bcrypt is CPU work on the event loop (bcryptjs is JavaScript): a flood of logins would starve
// every other call. So at most `running` hashes run at once and `waiting` more wait their turn;
// beyond that a call is answered `rate_limited` at once, before any hashing.
import bcrypt from "bcryptjs";
import { AppError } from "../errors";
import { createSemaphore, SemaphoreFull } from "../semaphore";

/** bcrypt reads at most 72 bytes; longer passwords are refused rather than silently truncated. */
export const MAX_PASSWORD_BYTES = 72;
export const MIN_PASSWORD_LENGTH = 8;

export interface Passwords {
  /** Throws `rate_limited` when too many hashes are in flight. */
  hash(password: string): Promise<string>;
  /** Compares against `hash`, or against a fixed dummy hash when there is no account, so an
   * unknown username costs as much time as a wrong password. Throws `rate_limited` like hash. */
  verify(password: string, hash: string | undefined): Promise<boolean>;
}

export interface PasswordWork {
  cost: number;
  /** Hashes computed at once. */
  running: number;
  /** Hashes waiting for a turn; more are refused. */
  waiting: number;
  /** Hears each password check refused (the metrics' login throttle count); a refused hash is not one. */
  onRefused?: () => void;
}

export function createPasswords({ cost, running, waiting, onRefused }: PasswordWork): Passwords {
  const slots = createSemaphore(running, { maxWaiting: waiting });
  const bounded = async <T>(work: () => Promise<T>, refused?: () => void): Promise<T> => {
    try {
      return await slots.run(work);
    } catch (err) {
      if (err instanceof SemaphoreFull) {
        refused?.();
        throw new AppError("rate_limited", "too many password checks at once; try again shortly", [], { cause: err });
      }
      throw err;
    }
  };
  let dummy: Promise<string> | undefined;
  return {
    hash: (password) => bounded(() => bcrypt.hash(password, cost)),
    verify: (password, hash) =>
      bounded(async () => {
        if (hash !== undefined) return bcrypt.compare(password, hash);
        dummy ??= bcrypt.hash("qod-no-such-account", cost);
        await bcrypt.compare(password, await dummy);
        return false;
      }, onRefused),
  };
}
