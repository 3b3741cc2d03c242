// The bootstrap superuser (QOD_ADMIN_USERNAME / QOD_ADMIN_PASSWORD), checked at every start:
// - absent: created, with QOD_ADMIN_PASSWORD or, unset, the default `admin`;
// - QOD_ADMIN_PASSWORD set and not its stored password: the stored one is replaced (its sessions
//   end) and an info line says so, so the variable is how an operator sets or resets it;
// - QOD_ADMIN_PASSWORD unset: its password is left alone, so one changed through the API survives
//   restarts and the default cannot undo it;
// and a warning is logged while its password is still the default.
import type { Logger } from "pino";
import type { DatabasePool } from "slonik";
import type { Config } from "../config";
import { newId } from "../ids";
import { createPasswords } from "./passwords";
import { findCredential, insertUserIfAbsent, updatePasswordHash } from "./queries";

/** The bootstrap superuser's first password while QOD_ADMIN_PASSWORD is unset. */
export const DEFAULT_ADMIN_PASSWORD = "admin";

/** Who the audit log says replaced the password. */
const ACTOR = { subject: "QOD_ADMIN_PASSWORD", requestId: "start" };

export async function seedAdmin(pool: DatabasePool, config: Pick<Config, "adminUsername" | "adminPassword" | "bcryptCost">, logger: Logger): Promise<void> {
  const passwords = createPasswords({ cost: config.bcryptCost, running: 1, waiting: 0 });
  const username = config.adminUsername;
  const given = config.adminPassword;
  const stored = await findCredential(pool, null, username);
  let isDefault: boolean;
  if (!stored) {
    const password = given ?? DEFAULT_ADMIN_PASSWORD;
    const user = { id: newId("u"), tenant: null, username, passwordHash: await passwords.hash(password), role: "admin" as const };
    // Replicas may race: one inserts, the others find it there.
    if (await insertUserIfAbsent(pool, user)) logger.info({ username }, "created the bootstrap superuser");
    isDefault = password === DEFAULT_ADMIN_PASSWORD;
  } else if (given !== undefined) {
    if (!(await passwords.verify(given, stored.password_hash))) {
      await updatePasswordHash(pool, stored, await passwords.hash(given), null, ACTOR);
      logger.info({ username }, "QOD_ADMIN_PASSWORD differs from the bootstrap superuser's stored password: replaced it, and ended the account's sessions");
    }
    isDefault = given === DEFAULT_ADMIN_PASSWORD;
  } else {
    isDefault = await passwords.verify(DEFAULT_ADMIN_PASSWORD, stored.password_hash);
  }
  if (isDefault) {
    logger.warn({ username }, "the bootstrap superuser still has the default password: set QOD_ADMIN_PASSWORD (applied at the next start) or change it (qodctl passwd)");
  }
}
