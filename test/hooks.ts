// Mocha root hooks: one real Postgres server for the whole run, with a migrated template.
import { startSharedPostgres, stopSharedPostgres } from "./helpers/postgres";

export const mochaHooks = {
  async beforeAll(this: Mocha.Context) {
    this.timeout(120_000);
    await startSharedPostgres();
  },
  async afterAll(this: Mocha.Context) {
    this.timeout(60_000);
    await stopSharedPostgres();
  },
};
