// Property-based fuzzing of every RPC over gRPC and REST (issue 11, reliability suite): hostile
// requests made by fast-check from the descriptor (helpers/fuzz.ts), sent with one of several
// credentials. For every one: never INTERNAL, UNKNOWN or a 5xx; every error carries a reason of
// the closed list; a rejected request leaves the state tables exactly as they were; and no line
// is logged at error level. Seeded: QOD_FUZZ_SEED replays a run (fast-check prints the seed and
// the path of a failure), QOD_FUZZ_RUNS sets the requests per RPC and surface (default 40, so
// 26 routes × 2 surfaces × 40 = 2080 requests).
import assert from "node:assert/strict";
import type { DescMessage, JsonObject } from "@bufbuild/protobuf";
import { status, type ServiceError } from "@grpc/grpc-js";
import fc from "fast-check";
import { isReason } from "../src/errors";
import { buildRoutes, gatewayServices, type Route } from "../src/gateway/routes";
import { createLogger } from "../src/logger";
import { startTestApp, TEST_API_KEY, type TestApp } from "./helpers/app";
import { decodeError, type CallOptions } from "./helpers/clients";
import { dropDatabasesWithPrefix } from "./helpers/databases";
import { brokenBytes, brokenJson, bytesBreak, jsonBreak, requestJson, type FuzzNames } from "./helpers/fuzz";
import { insertDatabaseRow } from "./helpers/fixtures";
import { sharedPostgres, uniquePrefix } from "./helpers/postgres";
import { rawClient, registry } from "./helpers/raw-grpc";
import { restHeaders } from "./helpers/rest";
import { dumpState } from "./helpers/state-dump";

const SEED = Number(process.env.QOD_FUZZ_SEED ?? 20_251_111);
const RUNS = Number(process.env.QOD_FUZZ_RUNS ?? 40);
const CREDENTIALS = ["api_key", "tenant_admin", "plain_user", "none", "garbage"] as const;
type CredentialName = (typeof CREDENTIALS)[number];

/** The verdict on one answer: undefined when it is acceptable, else why not. */
type Verdict = string | undefined;

function grpcVerdict(code: status, err: ServiceError | undefined): Verdict {
  if (code === status.OK) return undefined;
  if (code === status.INTERNAL || code === status.UNKNOWN || code === status.DATA_LOSS) return `answered ${status[code]}: ${err?.details}`;
  if (!err?.metadata?.get("grpc-status-details-bin").length) return `${status[code]} without google.rpc.Status details: ${err?.details}`;
  const { reason, domain } = decodeError(err);
  if (!isReason(reason) || domain !== "qod.v1") return `${status[code]} with reason ${JSON.stringify(reason)} (${domain})`;
  return undefined;
}

function restVerdict(httpStatus: number, text: string): Verdict {
  if (httpStatus >= 500) return `answered ${httpStatus}: ${text.slice(0, 300)}`;
  if (httpStatus === 200) return undefined;
  let body: { details?: { "@type"?: string; reason?: string; domain?: string }[] };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    return `${httpStatus} with a body that is not JSON: ${text.slice(0, 200)}`;
  }
  const info = body.details?.find((d) => d["@type"] === "type.googleapis.com/google.rpc.ErrorInfo");
  if (!info?.reason || !isReason(info.reason) || info.domain !== "qod.v1") return `${httpStatus} without a reason of the closed list: ${text.slice(0, 300)}`;
  return undefined;
}

describe("fuzzing every RPC over gRPC and REST", function () {
  this.timeout(600_000);
  let app: TestApp;
  let raw: ReturnType<typeof rawClient>;
  const p = uniquePrefix("fz");
  const errorLines: string[] = [];
  const credentials = {} as Record<CredentialName, CallOptions>;
  let names: FuzzNames;
  const counts = { requests: 0, rejected: 0, grpc: 0, rest: 0 };
  const routes: Route[] = buildRoutes(registry, gatewayServices(registry)).routes.filter(
    (route, i, all) => all.findIndex((r) => r.grpcPath === route.grpcPath) === i, // one route per RPC
  );

  before(async () => {
    const logger = createLogger("warn", {
      write: (line: string) => {
        if ((JSON.parse(line) as { level: number }).level >= 50) errorLines.push(line);
      },
    });
    app = await startTestApp({ logger });
    raw = rawClient(app.grpcAddress);
    const secondTenant = `${p}b`;
    await app.clients.tenants.createTenant({ name: p });
    await app.clients.tenants.createTenant({ name: secondTenant });
    // A database with a pool: the tenant cannot be deleted from under the run.
    await insertDatabaseRow(app.pool, p, "m");
    await app.clients.pools.createPool({ tenant: p, tenantDb: "m", pool: "bi" });
    const token = async (username: string, role: string) => {
      const password = `${username}'s password`;
      await app.clients.auth.createUser({ tenant: p, username, password, role });
      const { token: session } = await app.clients.auth.login({ tenant: p, username, password }, {});
      return (await app.clients.auth.createAccessToken({ name: "fuzz" }, { apiKey: session })).token;
    };
    credentials.api_key = { apiKey: TEST_API_KEY };
    credentials.tenant_admin = { apiKey: await token("boss", "admin") };
    credentials.plain_user = { apiKey: await token("pleb", "user") };
    credentials.none = {};
    credentials.garbage = { bearer: "a.b.c", headers: { "x-forwarded-for": "not an address" } };
    names = {
      tenants: [p, secondTenant, "admin"],
      databases: ["m", "a", "b", `${p}_m`, `${p}_a`],
      pools: ["bi", "p1"],
      users: ["boss", "pleb", "admin", "Boss"],
      pgPort: sharedPostgres().target.port,
    };
    process.stdout.write(`      [fuzz seed ${SEED}, ${RUNS} requests per RPC and surface; replay with QOD_FUZZ_SEED=${SEED}]\n`);
  });
  after(async () => {
    raw?.close();
    await app?.stop();
    await dropDatabasesWithPrefix(sharedPostgres(), p);
    process.stdout.write(`      [${counts.requests} requests (${counts.grpc} gRPC, ${counts.rest} REST), ${counts.rejected} rejected]\n`);
  });

  /** Sends one request, checks the answer, and that a rejection changed nothing. */
  async function check(send: () => Promise<{ ok: boolean; verdict: Verdict }>): Promise<void> {
    const before = await dumpState(app.pool);
    const { ok, verdict } = await send();
    counts.requests++;
    assert.equal(verdict, undefined);
    if (ok) return;
    counts.rejected++;
    assert.equal(await dumpState(app.pool), before, "a rejected request changed the state");
  }

  const property = (message: DescMessage) => ({ json: requestJson(message, names), credential: fc.constantFrom(...CREDENTIALS) });

  routes.forEach((route, index) => {
    const message = route.method.input;

    it(`${route.grpcPath} over gRPC`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.record({ ...property(message), broken: bytesBreak }), ({ json, credential, broken }) =>
          check(async () => {
            counts.grpc++;
            const answer = await raw.call(route.grpcPath, brokenBytes(message, json, broken), credentials[credential]);
            return { ok: answer.code === status.OK, verdict: grpcVerdict(answer.code, answer.code === status.OK ? undefined : (answer as unknown as ServiceError)) };
          }),
        ),
        { numRuns: RUNS, seed: SEED + 2 * index, endOnFailure: true },
      );
    });

    it(`${route.httpMethod} ${route.template} (${route.grpcPath.split("/")[2]}) over REST`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.record({ ...property(message), broken: jsonBreak }), ({ json, credential, broken }) =>
          check(async () => {
            counts.rest++;
            const { url, init } = restRequest(app.httpBase, route, message, json, broken, restHeaders(credentials[credential]));
            const res = await fetch(url, init);
            const text = await res.text();
            return { ok: res.status === 200, verdict: restVerdict(res.status, text) };
          }),
        ),
        { numRuns: RUNS, seed: SEED + 2 * index + 1, endOnFailure: true },
      );
    });
  });

  describe("afterwards", () => {
    it(`sent at least 2000 requests, and logged nothing at error level`, () => {
      assert.ok(counts.requests >= Math.min(2000, routes.length * 2 * RUNS), `${counts.requests} requests`);
      assert.deepEqual(errorLines, []);
    });
  });
});

/** Percent-encodes the UTF-8 of a value (a lone surrogate becomes U+FFFD, as any client sends it). */
const percent = (value: string) => [...Buffer.from(value)].map((b) => `%${b.toString(16).padStart(2, "0")}`).join("");

/** The HTTP request of a route: query parameters for a GET, the (possibly broken) JSON body otherwise. */
function restRequest(
  base: string,
  route: Route,
  message: DescMessage,
  json: JsonObject,
  broken: Parameters<typeof brokenJson>[2],
  headers: Record<string, string>,
): { url: string; init: RequestInit } {
  if (route.httpMethod === "GET") {
    const query = Object.entries(json).flatMap(([key, value]) =>
      typeof value === "string" || typeof value === "number" || typeof value === "boolean" ? [`${key}=${percent(String(value))}`] : [],
    );
    if (broken.kind === "unknown_field") query.push(`${percent(broken.key)}=x`);
    return { url: `${base}${route.template}${query.length > 0 ? `?${query.join("&")}` : ""}`, init: { method: "GET", headers } };
  }
  return { url: `${base}${route.template}`, init: { method: route.httpMethod, headers: { ...headers, "content-type": "application/json" }, body: brokenJson(message, json, broken) } };
}
