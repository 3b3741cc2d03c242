// Work on the Postgres servers that hold tenant databases: CREATE/DROP DATABASE, the DuckLake
// catalog, and the roles of pools (roles.ts). It knows nothing of the state database: lifecycle.ts decides what runs when. None of it
// may run inside a state transaction (CREATE DATABASE cannot, and slonik may replay a transaction
// callback). Every failure leaves here as an AppError with a safe message.
import { setTimeout as delay } from "node:timers/promises";
import type { Logger } from "pino";
import { SlonikError, type DatabaseConnection, type DatabasePool } from "slonik";
import { z } from "zod";
import { version } from "../../package.json";
import type { PgTarget } from "../config";
import { errorCode } from "../db/errors";
import { createPool, pgUrl } from "../db/pool";
import { sql } from "../db/sql";
import { AppError, invalid } from "../errors";
import { addSchemas, initializeCatalog, verifyCatalog, type CatalogOptions } from "./ducklake";
import { dropPoolRole, ensurePoolRole, type PoolRole } from "./roles";
import type { Secrets } from "./vault";

export const CREATED_BY = `qod-control-plane ${version}`;

/** The database every server has, where CREATE and DROP DATABASE are sent from. */
const MAINTENANCE_DATABASE = "postgres";
/** CREATE DATABASE statements one process sends to one server at a time. */
const ADMIN_POOL_SIZE = 4;
/** Postgres itself waits up to 5 s for other sessions to leave the template; one more attempt covers a longer one. */
const CREATE_ATTEMPTS = 2;

/**
 * The server a ducklake database lives on: the global defaults overlaid with its metastore. The
 * default password is only ever sent to the default server, so an override naming another host
 * cannot collect it.
 */
export function effectiveTarget(defaults: PgTarget, metastore: Record<string, string>, secrets: Secrets): PgTarget {
  const host = metastore.pgHost ?? defaults.host;
  const port = metastore.pgPort ? Number(metastore.pgPort) : defaults.port;
  const defaultServer = host === defaults.host && port === defaults.port;
  return {
    host,
    port,
    user: metastore.pgUser ?? defaults.user,
    password: secrets.metastore.pgPassword ?? (defaultServer ? defaults.password : undefined),
  };
}

type CatalogState = "absent" | "whole" | "partial";

/** One connection to a server's maintenance database, reserved for the caller. */
export interface AdminSession {
  /** Creates an empty database. */
  createDatabase(name: string): Promise<void>;
}

export interface Servers {
  databaseExists(target: PgTarget, name: string): Promise<boolean>;
  /**
   * Runs `work` on one reserved admin connection of the server, once it has one: what `work`
   * does before sending on it happens on the connection's turn, not before a wait in the pool.
   */
  withAdmin<T>(target: PgTarget, work: (admin: AdminSession) => Promise<T>): Promise<T>;
  /** Writes the whole DuckLake catalog in one transaction on the new database. */
  writeCatalog(target: PgTarget, name: string, options: CatalogOptions): Promise<void>;
  /** Adds the schemas the database's catalog lacks, in one transaction; returns those added. */
  addCatalogSchemas(target: PgTarget, name: string, schemas: readonly string[]): Promise<string[]>;
  /** Whether the database exists, and if so whether it holds a whole catalog. */
  inspect(target: PgTarget, name: string): Promise<CatalogState>;
  dropDatabase(target: PgTarget, name: string): Promise<void>;
  /** Makes a pool's role on the database `name` (roles.ts), or brings it back in line. */
  ensurePoolRole(target: PgTarget, name: string, role: PoolRole): Promise<void>;
  /** Drops a pool's role; the database `name` may be gone already. */
  dropPoolRole(target: PgTarget, name: string, role: Omit<PoolRole, "verifier">): Promise<void>;
  /** Closes the cached pools. */
  end(): Promise<void>;
}

const Flag = z.object({ ok: z.boolean() });
const voidQuery = sql.typeAlias("void");

/** A failure on a tenant server, as a client may see it: never SQL, never a connection string. */
function serverError(err: unknown, logger: Logger, operation: string): AppError {
  if (err instanceof AppError) return err;
  const code = errorCode(err);
  logger.warn({ operation, code, err: { name: (err as Error).name, message: (err as Error).message } }, "database server operation failed");
  const metastore = (description: string) => invalid([{ field: "metastore", reason: "invalid_metastore", description }]);
  switch (code) {
    case "28P01":
    case "28000":
      return metastore("the database server rejected the user or password");
    case "42501":
      return metastore("the user may not create or drop databases on the database server");
    case "42P04":
    case "23505": // pg_database's unique index, when another session creates the same name at once
      return new AppError("exists", "a Postgres database with this name already exists on its server", [], { cause: err });
    case "55006":
      return new AppError("unavailable", "the database server is busy; retry shortly", [], { cause: err });
    case "53300":
      return new AppError("unavailable", "the database server has no free connections; retry when it has", [], { cause: err });
    case "57P01":
    case "57P02":
    case "57P03":
      return new AppError("unavailable", "the database server is shutting down or starting up; retry shortly", [], { cause: err });
    case "ECONNREFUSED":
      return new AppError("unavailable", "the database server refused the connection", [], { cause: err });
    default:
      return new AppError("unavailable", "the database server cannot be reached or could not complete the operation", [], { cause: err });
  }
}

export function createServers(logger: Logger): Servers {
  const admins = new Map<string, Promise<DatabasePool>>();

  /** One small pool per server, on its maintenance database, shared by every provisioning there. */
  function admin(target: PgTarget): Promise<DatabasePool> {
    const key = JSON.stringify([target.host, target.port, target.user, target.password ?? null]);
    let pool = admins.get(key);
    if (!pool) {
      pool = createPool(pgUrl(target, MAINTENANCE_DATABASE), logger, { maximumPoolSize: ADMIN_POOL_SIZE });
      admins.set(key, pool);
      pool.catch(() => admins.delete(key));
    }
    return pool;
  }

  /** A pool on one tenant database for the length of `work`: nothing stays connected to a database that may be dropped next. */
  async function onDatabase<T>(target: PgTarget, name: string, work: (db: DatabasePool) => Promise<T>): Promise<T> {
    const db = await createPool(pgUrl(target, name), logger, { maximumPoolSize: 1 });
    try {
      return await work(db);
    } finally {
      await db.end();
    }
  }

  async function guarded<T>(operation: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      throw serverError(err, logger, operation);
    }
  }

  async function databaseExists(target: PgTarget, name: string): Promise<boolean> {
    return guarded("exists", async () =>
      (await admin(target)).oneFirst(sql.type(Flag)`SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = ${name}) AS ok`),
    );
  }

  return {
    databaseExists,

    async withAdmin(target, work) {
      const session = (connection: DatabaseConnection): AdminSession => ({
        createDatabase: (name) =>
          guarded("create", async () => {
            // template0 accepts no connections, so the "source database is being accessed by other
            // users" error (55006) of a busy template1 cannot happen; the retry covers a server whose
            // template0 was opened to connections by hand, and other replicas need no serialising.
            // No STRATEGY: the server's default works on every version (the option is PG15+), and
            // WAL_LOG spares a shared server FILE_COPY's checkpoints.
            for (let attempt = 1; ; attempt++) {
              try {
                await connection.query(voidQuery`CREATE DATABASE ${sql.identifier([name])} TEMPLATE template0`);
                // Only the roles of its own pools may connect to a tenant's database (roles.ts).
                return void (await connection.query(voidQuery`REVOKE ALL ON DATABASE ${sql.identifier([name])} FROM PUBLIC`));
              } catch (err) {
                if (errorCode(err) !== "55006" || attempt === CREATE_ATTEMPTS) throw err;
                await delay(100 * (0.5 + Math.random()));
              }
            }
          }),
      });
      // Failures of the server (reaching it, getting a connection) are its errors; whatever `work`
      // throws is the caller's and passes through as it is.
      let failedInWork = false;
      try {
        return await (await admin(target)).connect(async (connection) => {
          try {
            return await work(session(connection));
          } catch (err) {
            failedInWork = true;
            throw err;
          }
        });
      } catch (err) {
        throw failedInWork ? err : serverError(err, logger, "create");
      }
    },

    writeCatalog: (target, name, options) =>
      guarded("catalog", () => onDatabase(target, name, (db) => db.transaction((tx) => initializeCatalog(tx, options)))),

    addCatalogSchemas: (target, name, schemas) =>
      guarded("catalog", () =>
        onDatabase(target, name, async (db) => {
          // A DuckDB client committing at the same moment takes the same snapshot id: try again.
          for (let attempt = 1; ; attempt++) {
            try {
              return await db.transaction((tx) => addSchemas(tx, schemas));
            } catch (err) {
              if (errorCode(err) !== "23505") throw err;
              if (attempt === CREATE_ATTEMPTS) throw new AppError("unavailable", "the catalog kept changing while the schema was added; retry");
            }
          }
        }),
      ),

    inspect: (target, name) =>
      guarded("inspect", async () => {
        if (!(await databaseExists(target, name))) return "absent";
        return onDatabase(target, name, async (db) => {
          try {
            await verifyCatalog(db);
            return "whole";
          } catch (err) {
            if (err instanceof SlonikError) throw err; // the server failed; the catalog's state is unknown
            return "partial";
          }
        });
      }),

    dropDatabase: (target, name) =>
      guarded("drop", async () => {
        await (await admin(target)).query(voidQuery`DROP DATABASE IF EXISTS ${sql.identifier([name])} WITH (FORCE)`);
      }),

    ensurePoolRole: (target, name, role) =>
      guarded("role", async () => {
        const pool = await admin(target);
        await onDatabase(target, name, (db) => ensurePoolRole(pool, db, name, role));
      }),

    dropPoolRole: (target, name, role) =>
      guarded("role", async () => {
        const pool = await admin(target);
        if (await databaseExists(target, name)) await onDatabase(target, name, (db) => dropPoolRole(pool, db, role));
        else await dropPoolRole(pool, undefined, role);
      }),

    async end() {
      const pending = [...admins.values()];
      admins.clear();
      await Promise.all(
        pending.map(async (pool) => {
          try {
            await (await pool).end();
          } catch {
            // a pool that never connected has nothing to close
          }
        }),
      );
    },
  };
}
