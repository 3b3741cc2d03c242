// The sql tag every query uses. `void` marks statements that return no rows.
import { createSqlTag } from "slonik";
import { z } from "zod";

export const sql = createSqlTag({
  typeAliases: {
    void: z.object({}).strict(),
  },
});

export type { DatabasePool, DatabaseTransactionConnection, CommonQueryMethods } from "slonik";
