// The bootstrap superuser (QOD_ADMIN_USERNAME / QOD_ADMIN_PASSWORD), created at start when
// absent. Never overwritten: a password changed through the API survives restarts, and the
// default `admin` password in the environment cannot undo it.
import type { Logger } from "pino";
import type { DatabasePool } from "slonik";
import type { Config } from "../config";
import { newId } from "../ids";
import { createPasswords } from "./passwords";
import { insertUserIfAbsent, userExists } from "./queries";

export async function seedAdmin(pool: DatabasePool, config: Pick<Config, "adminUsername" | "adminPassword" | "bcryptCost">, logger: Logger): Promise<void> {
  // Skips the bcrypt work on every restart; the insert itself is safe when replicas race.
  if (await userExists(pool, null, config.adminUsername)) return;
  const passwordHash = await createPasswords({ cost: config.bcryptCost, running: 1, waiting: 0 }).hash(config.adminPassword);
  const user = { id: newId("u"), tenant: null, username: config.adminUsername, passwordHash, role: "admin" as const };
  if (await insertUserIfAbsent(pool, user)) logger.info({ username: config.adminUsername }, "created the bootstrap superuser");
}
