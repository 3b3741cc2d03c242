// The seed's Supavisor setup page (shared/seeds/003), run as a user would: its curl lines, verbatim,
// against the service on Supavisor's port 4000 (API_JWT_SECRET=dev, the development switch on), with
// a real throwaway Postgres on localhost:6432 whose `postgres` password is `postgres`.
import assert from "node:assert/strict";
import { startTestApp, type TestApp } from "./helpers/app";
import { startPostgres, type TestPostgres } from "./helpers/postgres";
import { DELETE, FIRST_PUT, runCurl as run, SECOND_PUT, withoutComments } from "./helpers/seed-lines";

describe("the seed's Supavisor lines, verbatim, on port 4000", function () {
  this.timeout(60_000);
  let upstream: TestPostgres;
  let app: TestApp;

  before(async () => {
    upstream = await startPostgres({ port: 6432, password: "postgres" });
    app = await startTestApp({ env: { API_JWT_SECRET: "dev", QOD_DEV_INSECURE_SECRETS: "true", QOD_SUPAVISOR_HTTP_PORT: "4000" } });
  });
  after(async () => {
    await app?.stop();
    await upstream?.stop();
  });

  it("registers dev_tenant with its manager user, answers {data} without a password, and deletes it", async () => {
    const created = await run(FIRST_PUT);
    assert.equal(created.status, 200, created.body);
    const data = (created.json as { data: Record<string, unknown> }).data;
    assert.equal(data.external_id, "dev_tenant");
    assert.equal(data.db_host, "localhost");
    assert.equal(data.require_user, false);
    assert.match(String((data.default_parameter_status as { server_version: string }).server_version), /^\d+\.\d+/);
    assert.deepEqual(data.users, [
      { db_user_alias: "postgres", db_user: "postgres", pool_size: 20, is_manager: true, mode_type: "transaction", pool_checkout_timeout: 60000 },
    ]);
    assert.ok(!created.body.includes("db_password"));

    // QOD's own API sees the same tenant, its user as a pool and its upstream as a database.
    const tenant = await app.clients.tenants.getTenant({ name: "dev_tenant" });
    assert.deepEqual(tenant.pools, ["postgres"]);
    const { tenantDbs } = await app.clients.databases.listDatabases({ tenant: "dev_tenant" });
    assert.deepEqual(tenantDbs.map((d) => [d.name, d.kind]), [["dev_tenant_upstream", "external"]]);

    const deleted = await run(DELETE);
    assert.deepEqual([deleted.status, deleted.json], [200, {}]);
  });

  it("refuses the second example as written (its // comments are not JSON), then its placeholder certificate, then takes it without TLS", async () => {
    const asWritten = await run(SECOND_PUT);
    assert.equal(asWritten.status, 400, asWritten.body);
    assert.doesNotMatch(asWritten.body, /postgres"/, "the error does not echo the body");

    const fixed = withoutComments(SECOND_PUT);
    const placeholder = await run(fixed);
    assert.equal(placeholder.status, 400, placeholder.body);
    assert.match(placeholder.body, /upstream_tls_ca/);
    assert.equal((placeholder.json as { details: { reason: string }[] }).details[0]?.reason, "invalid_upstream_tls_ca");

    const plain = await run(fixed.replace('"upstream_ssl": true,', '"upstream_ssl": false,'));
    assert.equal(plain.status, 200, plain.body);
    const data = (plain.json as { data: Record<string, unknown> }).data;
    assert.equal(data.upstream_ssl, false);
    assert.equal(data.default_max_clients, 200);
    assert.deepEqual(
      (data.users as Record<string, unknown>[]).map((u) => [u.db_user, u.pool_size, u.pool_checkout_timeout]),
      [["postgres", 10, 100]],
    );
    assert.ok(!plain.body.includes("db_password"));
    assert.deepEqual((await run(DELETE)).status, 200);
  });
});
