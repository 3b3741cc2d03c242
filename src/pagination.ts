// Keyset pagination (AIP-158): an opaque token names the last key returned and the filter it
// belongs to, so a page costs the same whatever the table's size.
import { z } from "zod";
import type { Violations } from "./validation";

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

/**
 * A token's key goes into a comparison in SQL, so what it decodes to must be a string Postgres
 * can hold (no NUL) and of a key's size; anything else is not a token this service issued.
 */
const Key = z.string().max(1024).refine((key) => !key.includes("\u0000"));
const Token = z.object({ after: Key, scope: z.string() });

export interface Page {
  limit: number;
  /** Return keys strictly after this one; undefined for the first page. */
  after: string | undefined;
}

/** Reads page_size and page_token; `scope` is the filter the token must have been issued for. */
export function readPage(violations: Violations, pageSize: number, pageToken: string, scope: string): Page {
  if (pageSize < 0) violations.add("page_size", "invalid_page_size", "must not be negative");
  const limit = pageSize === 0 ? DEFAULT_PAGE_SIZE : Math.min(pageSize, MAX_PAGE_SIZE);
  if (pageToken === "") return { limit, after: undefined };
  try {
    const token = Token.parse(JSON.parse(Buffer.from(pageToken, "base64url").toString("utf8")));
    if (token.scope === scope) return { limit, after: token.after };
  } catch {
    // falls through to the violation below
  }
  violations.add("page_token", "invalid_page_token", "is not a token issued by a previous call of this list");
  return { limit, after: undefined };
}

/** Cuts the extra row a query fetched (limit + 1) and makes the next token from the last key. */
export function pageOf<T>(rows: readonly T[], page: Page, keyOf: (row: T) => string, scope: string): { items: T[]; nextPageToken: string } {
  if (rows.length <= page.limit) return { items: [...rows], nextPageToken: "" };
  const items = rows.slice(0, page.limit);
  const last = items[items.length - 1];
  const nextPageToken = Buffer.from(JSON.stringify({ after: keyOf(last), scope })).toString("base64url");
  return { items, nextPageToken };
}
