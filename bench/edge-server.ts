// The edge in a process of its own for bench/edge.ts, so that its CPU and memory are its own.
// Driven over the IPC channel: "start" (options and one pool), "stats", "stop".
import pino from "pino";
import { Edge } from "../src/edge/server";
import type { EdgePool } from "../src/edge/snapshot";

export type EdgeServerCommand =
  | { type: "start"; pgbouncerBinary: string; pool: EdgePool; tenant: string }
  | { type: "stats" }
  | { type: "stop" };

export type EdgeServerReply =
  | { type: "ready"; transactionPort: number; sessionPort: number }
  | { type: "stats"; sessions: number; rssBytes: number }
  | { type: "error"; message: string };

let edge: Edge | undefined;
const reply = (message: EdgeServerReply) => process.send?.(message);
const stop = async () => {
  await edge?.close(); // stops its engines too
  process.exit(0);
};
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => void stop());

process.on("message", (command: EdgeServerCommand) => {
  void (async () => {
    try {
      switch (command.type) {
        case "start": {
          edge = new Edge({
            host: "127.0.0.1",
            transactionPort: 0,
            sessionPort: 0,
            pgbouncerBinary: command.pgbouncerBinary,
            logger: pino({ level: "warn" }),
            handshakeTimeoutMs: 30_000,
          });
          const ports = await edge.listen();
          await edge.apply([
            { name: command.tenant, disabled: false, enforceSsl: false, allowList: [], users: new Map([[command.pool.user, command.pool]]) },
          ]);
          reply({ type: "ready", ...ports });
          break;
        }
        case "stats":
          (globalThis as { gc?: () => void }).gc?.(); // --expose-gc: measure live memory, not garbage
          reply({ type: "stats", sessions: edge?.health().connections ?? 0, rssBytes: process.memoryUsage().rss });
          break;
        case "stop":
          await stop();
      }
    } catch (err) {
      reply({ type: "error", message: err instanceof Error ? err.message : String(err) });
    }
  })();
});
