// Baseline B1: a bare grpc-js server with the service's server options and a no-op unary
// handler on the same method path as GetTenant. It neither decodes the request nor encodes a
// response: it answers fixed bytes (a real GetTenant response, so the wire carries the same
// sizes both ways). What it measures is grpc-js and HTTP/2 on this machine, nothing of ours.
//
// Two diagnostic modes add GetTenant's one database read to the no-op handler, to split the
// service's cost into layers (the answer is still the fixed bytes):
//   pg      the same SQL through node-postgres' own pool (the floor of a read that asks Postgres);
//   slonik  src/tenants/queries.ts findTenantByName on a pool made like the service's;
//   tx      CreateTenant's statement (db/transaction.ts inStatement bounded by the call's
//           deadline, insertTenant with its audit row) with names made here, on such a pool.
//
//   node --import tsx bench/servers/bare-grpc.ts <host> <port> <response base64> [noop|pg|slonik|tx <pg url> <pool size> <tenant>]
// Prints "listening <port>" once bound; stops on SIGTERM/SIGINT.
import { Server, ServerCredentials, type sendUnaryData, type ServerUnaryCall } from "@grpc/grpc-js";
import { Pool } from "pg";
import pino from "pino";
import type { CommonQueryMethods, QuerySqlToken } from "slonik";
import { connectState } from "../../src/db/state";
import { GRPC_SERVER_OPTIONS } from "../../src/server/grpc";
import { findTenantByName, insertTenant } from "../../src/tenants/queries";
import { inStatement } from "../../src/db/transaction";
import { randomUUID } from "node:crypto";

const [host = "127.0.0.1", portArg = "0", responseB64 = "", mode = "noop", url = "", poolSizeArg = "10", tenant = ""] = process.argv.slice(2);
const response = Buffer.from(responseB64, "base64");
const identity = (bytes: Buffer) => bytes;

/** The SQL text and values findTenantByName sends, captured from a stand-in connection. */
async function getTenantQuery(name: string): Promise<{ text: string; values: readonly unknown[] }> {
  let captured: QuerySqlToken | undefined;
  const spy = {
    maybeOne: async (query: QuerySqlToken) => {
      captured = query;
      return null;
    },
  } as unknown as CommonQueryMethods;
  await findTenantByName(spy, name);
  if (!captured) throw new Error("findTenantByName sent no query");
  return { text: captured.sql.replaceAll("$slonik_", "$"), values: captured.values };
}

type Work = (call: ServerUnaryCall<Buffer, Buffer>) => Promise<void>;

async function makeRead(): Promise<Work> {
  const poolSize = Number(poolSizeArg);
  if (mode === "pg") {
    const pool = new Pool({ connectionString: url, max: poolSize });
    pool.on("error", () => {});
    const query = await getTenantQuery(tenant);
    return async () => {
      const { rows } = await pool.query(query.text, [...query.values]);
      if (rows.length !== 1) throw new Error("the tenant was not found");
    };
  }
  if (mode === "slonik") {
    const pool = (await connectState(url, pino({ level: "silent" }), poolSize)).pool;
    return async () => {
      if (!(await findTenantByName(pool, tenant))) throw new Error("the tenant was not found");
    };
  }
  if (mode === "tx") {
    const pool = (await connectState(url, pino({ level: "silent" }), poolSize)).pool;
    const run = `${process.pid.toString(36)}${Date.now().toString(36)}`;
    let counter = 0;
    return async (call) => {
      const name = `bench_x_${run}_${counter++}`;
      const raw = call.getDeadline();
      const deadline = raw instanceof Date ? raw.getTime() : Number.isFinite(raw) ? Number(raw) : undefined;
      const actor = { subject: "api-key", requestId: randomUUID() };
      await inStatement(pool, { abortReason: undefined, deadline }, (db) =>
        insertTenant(db, { name, displayName: name, authProvider: "db", authConfig: {} }, actor));
    };
  }
  return async () => {};
}

async function main(): Promise<void> {
  const read = await makeRead();
  const server = new Server(GRPC_SERVER_OPTIONS);
  const handler =
    mode === "noop"
      ? (_call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) => callback(null, response)
      : (_call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) =>
          void read(_call).then(
            () => callback(null, response),
            (err: Error) => {
              process.stderr.write("fail\n"); // counted by the bench
              callback({ code: 13, details: err.message });
            },
          );
  server.addService(
    {
      getTenant: {
        path: "/qod.v1.TenantService/GetTenant",
        requestStream: false,
        responseStream: false,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
      },
    },
    { getTenant: handler },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${portArg}`, ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  process.stdout.write(`listening ${port}\n`);
  const stop = () => server.tryShutdown(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`bare-grpc: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
