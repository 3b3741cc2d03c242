// Surrogate ids: a type prefix and 32 random hex digits (upstream QOD's form, e.g. `td-…`).
import { randomBytes } from "node:crypto";

export type IdPrefix = "td" | "p" | "u" | "pat";

export const newId = (prefix: IdPrefix): string => `${prefix}-${randomBytes(16).toString("hex")}`;
