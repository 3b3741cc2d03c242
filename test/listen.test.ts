// The notification listener (src/db/listen.ts) notices a connection that stops answering without
// being closed (a partition, a NAT that forgot the flow), not only one that is closed, and listens
// again on a new connection.
import assert from "node:assert/strict";
import net from "node:net";
import { PROBE, listen } from "../src/db/listen";
import { createPool, pgUrl } from "../src/db/pool";
import { sql } from "../src/db/sql";
import { quietLogger, sharedPostgres } from "./helpers/postgres";

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

const waitFor = async (check: () => boolean, ms: number) => {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
};

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
      assert.ok(await waitFor(() => events.length === 1, 5_000), "listens");
      await sender.query(sql.typeAlias("void")`SELECT FROM pg_notify('qod_test_probe', 'one')`);
      assert.ok(await waitFor(() => notices.includes("one"), 2_000));

      proxy.freeze();
      assert.ok(await waitFor(() => events.includes("lost"), 3_000), "a frozen connection is dropped");
      assert.ok(await waitFor(() => events.filter((e) => e === "listening").length === 2, 5_000), "and replaced");
      await sender.query(sql.typeAlias("void")`SELECT FROM pg_notify('qod_test_probe', 'two')`);
      assert.ok(await waitFor(() => notices.includes("two"), 2_000), "notices arrive on the new connection");
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
