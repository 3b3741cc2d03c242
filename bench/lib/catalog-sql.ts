// Baseline B3's script: `CREATE DATABASE` and then the very statements initializeCatalog runs
// (src/databases/ducklake.ts), rendered to plain SQL for psql. pg_dump cannot be used: the only
// client tools here are Debian's 15, which refuse to dump the embedded 17 server, and the
// embedded package ships no psql/pg_dump. psql 15 runs plain SQL against 17 without trouble.
import { performance } from "node:perf_hooks";
import { catalogStatements, type CatalogOptions } from "../../src/databases/ducklake";
import { exited, spawnTracked } from "./processes";

/** A SQL literal for a bind value (standard_conforming_strings is on since Postgres 9.1). */
function literal(value: unknown): string {
  if (value === null || value === undefined) return "NULL";
  if (typeof value === "number" || typeof value === "bigint") return String(value);
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value !== "string") throw new TypeError(`no SQL literal for ${typeof value}`);
  return `'${value.replaceAll("'", "''")}'`;
}

/** The catalog statements with their bind values inlined, one per line, in one transaction. */
export function renderCatalogSql(options: CatalogOptions): string {
  const lines = catalogStatements(options).map((statement) => {
    const text = statement.sql.replace(/\$slonik_(\d+)/g, (_, n: string) => literal(statement.values[Number(n) - 1]));
    if (/\$slonik_/.test(text)) throw new Error(`unrendered placeholder in: ${text}`);
    return `${text.replace(/\s+/g, " ")};`;
  });
  return ["BEGIN;", ...lines, "COMMIT;", ""].join("\n");
}

/** One psql run: create the database, connect to it, replay the catalog in a transaction. */
export function b3Script(database: string, catalogSql: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(database)) throw new Error(`unexpected database name ${database}`);
  return `CREATE DATABASE "${database}";\n\\connect ${database}\n${catalogSql}`;
}

export interface PsqlTarget {
  host: string;
  port: number;
  user: string;
  password: string | undefined;
}

/** Runs `script` through psql (stops at the first error); resolves with the wall time in ms. */
export async function runPsql(psql: string, target: PsqlTarget, database: string, script: string): Promise<number> {
  const started = performance.now();
  const child = spawnTracked(
    psql,
    ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", target.host, "-p", String(target.port), "-U", target.user, "-d", database, "-f", "-"],
    { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, PGPASSWORD: target.password ?? "", PGCONNECT_TIMEOUT: "10" } },
  );
  let stderr = "";
  child.stdout?.resume();
  child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
  child.stdin?.end(script);
  const code = await exited(child);
  if (code !== 0) throw new Error(`psql exited with ${code}: ${stderr.trim()}`);
  return performance.now() - started;
}
