// Row schema of the databases table and its mapping to the API's Database (never its secrets).
import { z } from "zod";
import { DatabaseStatus, type Database } from "../../gen/qod/v1/database";
import { REASONS } from "../errors";

/**
 * What a database is: a DuckLake catalog in Postgres, a standalone DuckDB file, nothing persistent,
 * or a Supavisor tenant's upstream, registered (never provisioned nor dropped).
 */
export const KINDS = ["ducklake", "duckdb-file", "memory", "external"] as const;
export type Kind = (typeof KINDS)[number];
/** The kinds CreateDatabase makes (an upstream is registered through SupavisorService). */
export const CREATABLE_KINDS = ["ducklake", "duckdb-file", "memory"] as const satisfies readonly Kind[];

/** A database row's lifecycle (lifecycle.ts). */
export const STATUSES = ["PROVISIONING", "READY", "FAILED", "DELETING"] as const;
export type Status = (typeof STATUSES)[number];

export const DatabaseRow = z.object({
  id: z.string(),
  tenant: z.string(),
  name: z.string(),
  suffix: z.string(),
  kind: z.enum(KINDS),
  data_path: z.string(),
  effective_data_path: z.string(),
  metastore: z.record(z.string()),
  object_store: z.record(z.string()),
  secrets: z.instanceof(Buffer).nullable(),
  default_database: z.string(),
  default_schema: z.string(),
  disabled: z.boolean(),
  status: z.enum(STATUSES),
  /** The reason of a FAILED create (empty otherwise); read with failureReason(). */
  status_reason: z.union([z.literal(""), z.enum(REASONS)]),
  status_message: z.string(),
  request_id: z.string().nullable(),
  provisioning_started_at: z.number().nullable(),
  created_at: z.number(),
  updated_at: z.number(),
});
export type DatabaseRow = z.infer<typeof DatabaseRow>;

const STATUS: Record<Status, DatabaseStatus> = {
  PROVISIONING: DatabaseStatus.PROVISIONING,
  READY: DatabaseStatus.READY,
  FAILED: DatabaseStatus.FAILED,
  DELETING: DatabaseStatus.DELETING,
};

export function toDatabase(row: DatabaseRow): Database {
  return {
    id: row.id,
    tenant: row.tenant,
    name: row.name,
    suffix: row.suffix,
    kind: row.kind,
    metastore: row.metastore,
    dataPath: row.data_path,
    objectStore: row.object_store,
    defaultDatabase: row.default_database,
    defaultSchema: row.default_schema,
    disabled: row.disabled,
    effectiveDataPath: row.effective_data_path,
    status: STATUS[row.status],
    statusMessage: row.status_message,
    createTime: new Date(row.created_at),
    updateTime: new Date(row.updated_at),
  };
}
