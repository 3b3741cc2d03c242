// The notification listener (src/db/listen.ts) notices a connection that stops answering without
// being closed (a partition, a NAT that forgot the flow), not only one that is closed, and listens
// again on a new connection.
import assert from "node:assert/strict";
import net from "node:net";
import { PROBE, listen } from "../src/db/listen";
import { createPool, pgUrl } from "../src/db/pool";
import { sql } from "../src/db/sql";
import { quietLogger, sharedPostgres } from "./helpers/postgres";
import { waitFor } from "./helpers/wait";

/** A TCP proxy to Postgres whose open connections can be frozen: bytes stop, nothing is closed. */
async function freezableProxy(target: { host: string; port: number }) {
  const sockets: net.Socket[] = [];
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    sockets.push(client, upstream);
    const forward = (from: net.Socket, to: net.Socket) => from.on("data", (chunk) => to.write(chunk));
    forward(client, upstream);
    forward(upstream, client);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", close).on("close", close);
    upstream.on("error", close).on("close", close);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    /** Freezes the connections open now; new ones pass. */
    freeze() {
      for (const socket of sockets.splice(0)) socket.removeAllListeners("data");
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe("the notification listener", () => {
  it("probes its connection: one that silently stops answering is dropped, and it listens again", async () => {
    const { target } = sharedPostgres();
    const proxy = await freezableProxy(target);
    const events: string[] = [];
    const notices: string[] = [];
    const listener = listen(pgUrl({ ...target, host: "127.0.0.1", port: proxy.port }, "postgres"), "qod_test_probe", quietLogger, {
      notify: (payload) => notices.push(payload),
      listening: () => events.push("listening"),
      lost: () => events.push("lost"),
    }, { everyMs: 200, timeoutMs: 300 });
    const sender = await createPool(pgUrl(target, "postgres"), quietLogger, { maximumPoolSize: 1 });
    try {
      await waitFor("listens", () => events.length === 1, { timeoutMs: 5_000 });
      await sender.query(sql.typeAlias("void")`SELECT FROM pg_notify('qod_test_probe', 'one')`);
      await waitFor("the first notice", () => notices.includes("one"), { timeoutMs: 2_000 });

      proxy.freeze();
      await waitFor("a frozen connection is dropped", () => events.includes("lost"), { timeoutMs: 3_000 });
      await waitFor("and replaced", () => events.filter((e) => e === "listening").length === 2, { timeoutMs: 5_000 });
      await sender.query(sql.typeAlias("void")`SELECT FROM pg_notify('qod_test_probe', 'two')`);
      await waitFor("notices arrive on the new connection", () => notices.includes("two"), { timeoutMs: 2_000 });
      assert.deepEqual(events, ["listening", "lost", "listening"]);
    } finally {
      await listener.close();
      await sender.end();
      await proxy.close();
    }
  });

  it("probes every 10 s by default and gives a probe 5 s", () => {
    assert.deepEqual(PROBE, { everyMs: 10_000, timeoutMs: 5_000 });
  });
});
