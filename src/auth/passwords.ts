// bcrypt hashing (bcryptjs). The work factor is configurable so tests stay fast; a hash keeps
// its own cost, so raising it later only affects new hashes.
import bcrypt from "bcryptjs";

/** bcrypt reads at most 72 bytes; longer passwords are refused rather than silently truncated. */
export const MAX_PASSWORD_BYTES = 72;
export const MIN_PASSWORD_LENGTH = 8;

export interface Passwords {
  hash(password: string): Promise<string>;
  /** Compares against `hash`, or against a fixed dummy hash when there is no account, so an
   * unknown username costs as much time as a wrong password. */
  verify(password: string, hash: string | undefined): Promise<boolean>;
}

export function createPasswords(cost: number): Passwords {
  let dummy: Promise<string> | undefined;
  return {
    hash: (password) => bcrypt.hash(password, cost),
    async verify(password, hash) {
      if (hash !== undefined) return bcrypt.compare(password, hash);
      dummy ??= bcrypt.hash("qod-no-such-account", cost);
      await bcrypt.compare(password, await dummy);
      return false;
    },
  };
}
