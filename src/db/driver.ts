// slonik's Postgres driver, with one fault of slonik 47 closed: a connection that breaks while a
// query runs on it (the server restarts or is killed) may never be let go by the pool.
//
// In @slonik/driver 47, pg reports the connection's error before the failed query's rejection
// has reached the driver, so the driver starts destroying the client while it still holds that
// query; its destroy then awaits the query, which rejects, and gives up before announcing
// `destroy`. The pool forgets a client only when it hears `destroy`, so such a client stays
// PENDING_DESTROY for good: it counts toward the pool's size and whoever waits on it waits
// forever. (A destroy that does announce still goes on to end the pg client, which on a socket
// already gone may never finish.) @slonik/driver 48 fixes the first, but needs Node 24.
//
// So here a destroy is over, for the pool and for whoever awaits it, as soon as the driver
// announced it or its own destroy ended, however it ended; it is announced then if the driver
// did not.
import { createPgDriverFactory } from "@slonik/pg-driver";
import type { DriverClient, DriverFactory } from "slonik";

type Listener = () => void;
type On = (event: string, listener: Listener) => unknown;

function announcingDestroy(client: DriverClient): DriverClient {
  const listeners = new Set<Listener>();
  let announced = false;
  const announce = () => {
    if (announced) return;
    announced = true;
    for (const listener of listeners) listener();
  };
  (client.on as On)("destroy", announce);

  let destroying: Promise<void> | undefined;
  const destroy = (): Promise<void> =>
    (destroying ??= new Promise<void>((resolve) => {
      if (announced) return resolve();
      listeners.add(resolve);
      client
        .destroy()
        .catch(() => {
          // Destroying failed or the client was destroyed already: either way it is done with.
        })
        .finally(announce);
    }));
  // The driver destroys a client on its error by itself; once that has had its turn, make sure it ends.
  (client.on as On)("error", () => setImmediate(() => void destroy()));

  const on: On = (event, listener) => (event === "destroy" ? listeners.add(listener) : (client.on as On)(event, listener));
  const off: On = (event, listener) => (event === "destroy" ? listeners.delete(listener) : (client.off as On)(event, listener));
  return {
    ...client,
    destroy,
    on: on as unknown as DriverClient["on"],
    off: off as unknown as DriverClient["off"],
    removeListener: off as unknown as DriverClient["removeListener"],
  };
}

/** The pg driver of slonik, its clients' destroy made dependable. */
export function createDriverFactory(): DriverFactory {
  const pg = createPgDriverFactory();
  return async (options) => {
    const driver = await pg(options);
    return { createClient: async () => announcingDestroy(await driver.createClient()) };
  };
}
