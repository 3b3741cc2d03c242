// The packed package as a consumer gets it: `npm pack` (its prepack builds the library and the
// CLI bundle), installed from the tarball into a fresh project, then used from there by child
// processes: the client library against a real server, its types by tsc, and its qodctl.
//
// No network: the consumer's node_modules is given the package's declared dependencies and its
// @grpc/grpc-js peer as links into this repository's node_modules before `npm install
// <tarball> --offline`; npm finds them satisfied and only unpacks the tarball. (The npm cache is
// not enough for --offline: it lacks the packuments npm needs to resolve the tarball's
// dependency ranges.) Only declared dependencies are linked, so one the package forgot to
// declare fails here.
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { startTestApp, TEST_API_KEY, type TestApp } from "./helpers/app";
import { runCli } from "./helpers/cli";
import { REPO_ROOT } from "./helpers/process";

// Asynchronous: a child that calls the test server must not block the process that serves it.
const run = promisify(execFile);

interface PackResult {
  filename: string;
  files: { path: string }[];
}

describe("the packed package", function () {
  this.timeout(120_000);
  let app: TestApp;
  let dir: string;
  let consumer: string;
  let packed: PackResult;
  let env: Record<string, string>;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "qod-package-"));
    env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, npm_config_update_notifier: "false" };
    // npm prints the prepack banner on stderr and the JSON on stdout.
    [packed] = JSON.parse(execFileSync("npm", ["pack", "--json", "--pack-destination", dir], { cwd: REPO_ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] })) as [PackResult];

    consumer = path.join(dir, "consumer");
    mkdirSync(path.join(consumer, "node_modules"), { recursive: true });
    writeFileSync(path.join(consumer, "package.json"), JSON.stringify({ name: "consumer", version: "1.0.0", private: true }));
    const manifest = JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { dependencies: Record<string, string>; peerDependencies: Record<string, string> };
    const linkFromRepo = (name: string) => {
      const link = path.join(consumer, "node_modules", name);
      mkdirSync(path.dirname(link), { recursive: true });
      symlinkSync(path.join(REPO_ROOT, "node_modules", name), link, "dir");
    };
    for (const name of [...Object.keys(manifest.dependencies), ...Object.keys(manifest.peerDependencies)]) linkFromRepo(name);
    execFileSync("npm", ["install", path.join(dir, packed.filename), "--offline", "--ignore-scripts", "--no-audit", "--no-fund"], { cwd: consumer, env, stdio: "ignore" });
    // Only for the type check below, as a TypeScript consumer has it (after the install, which prunes what nothing declares).
    linkFromRepo("@types/node");
    app = await startTestApp();
  });
  after(async () => {
    await app?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("holds the built library and CLI, the bin, the descriptor and the protos: no sources, no tests", () => {
    const paths = packed.files.map((f) => f.path);
    for (const needed of ["bin/qodctl.js", "dist/cli/qodctl.js", "dist/lib/src/client/index.js", "dist/lib/src/client/index.d.ts", "dist/lib/gen/qod/v1/tenant.js", "envoy/descriptor.binpb", "proto/qod/v1/tenant.proto"]) {
      assert.ok(paths.includes(needed), `${needed} is missing`);
    }
    const unexpected = paths.filter((p) => !/^(bin\/qodctl\.js|dist\/(lib|cli)\/|envoy\/descriptor\.binpb$|proto\/|docs\/|package\.json$|README\.md$)/.test(p));
    assert.deepEqual(unexpected, []);
    assert.ok(paths.every((p) => !p.endsWith(".ts") || p.endsWith(".d.ts")));
  });

  it("the library lists tenants and reads a failed call's ErrorInfo reason, with the consumer's one @grpc/grpc-js", async () => {
    await app.clients.tenants.createTenant({ name: "packaged" });
    const script = `
      const { createClients, errorInfo, TenantServiceClient, Tenant } = require("qod-control-plane");
      (async () => {
        const clients = createClients({ address: process.env.ADDRESS, apiKey: process.env.API_KEY, deadlineMs: 10000 });
        const list = await clients.tenants.listTenants({});
        let reason;
        try { await clients.tenants.getTenant({ name: "nosuch" }); } catch (err) { reason = errorInfo(err)?.reason; }
        let unauthenticated;
        const anonymous = createClients({ address: process.env.ADDRESS });
        try { await anonymous.tenants.listTenants(); } catch (err) { unauthenticated = errorInfo(err)?.reason; }
        clients.close();
        anonymous.close();
        const grpcOfPackage = require.resolve("@grpc/grpc-js", { paths: [require.resolve("qod-control-plane")] });
        console.log(JSON.stringify({
          names: list.tenants.map((t) => t.name),
          reason,
          unauthenticated,
          exports: [typeof TenantServiceClient, typeof Tenant.fromPartial],
          subpaths: [require("qod-control-plane/qod/v1/database").DatabaseStatus.READY, require("fs").statSync(require.resolve("qod-control-plane/descriptor.binpb")).size > 0],
          oneGrpc: grpcOfPackage === require.resolve("@grpc/grpc-js"),
        }));
      })().catch((err) => { console.error(err); process.exit(1); });`;
    const { stdout } = await run(process.execPath, ["-e", script], { cwd: consumer, env: { ...env, ADDRESS: app.grpcAddress, API_KEY: TEST_API_KEY }, encoding: "utf8" });
    assert.deepEqual(JSON.parse(stdout), { names: ["packaged"], reason: "not_found", unauthenticated: "unauthenticated", exports: ["function", "function"], subpaths: [2, true], oneGrpc: true });
  });

  it("its declarations type-check a TypeScript consumer", async () => {
    writeFileSync(
      path.join(consumer, "check.ts"),
      `import { createClients, errorInfo, type Tenant, type QodClients } from "qod-control-plane";
       import { DatabaseStatus } from "qod-control-plane/qod/v1/database";
       const clients: QodClients = createClients({ address: "127.0.0.1:50051", token: "t", tls: { ca: Buffer.from("") } });
       export async function names(): Promise<string[]> {
         const tenants: Tenant[] = (await clients.tenants.listTenants({ pageSize: 10 })).tenants;
         await clients.databases.getDatabase({ tenant: "acme", name: "sales" }, { deadlineMs: 1000 }).catch((err: unknown) => errorInfo(err)?.reason);
         return tenants.map((t) => t.name + DatabaseStatus.READY);
       }`,
    );
    writeFileSync(path.join(consumer, "tsconfig.json"), JSON.stringify({ compilerOptions: { module: "nodenext", moduleResolution: "nodenext", target: "es2022", strict: true, noEmit: true, types: ["node"] }, files: ["check.ts"] }));
    const tsc = path.join(realpathSync(path.join(REPO_ROOT, "node_modules", "typescript")), "bin", "tsc");
    const result = await run(process.execPath, [tsc, "-p", consumer], { cwd: consumer, env, encoding: "utf8" }).catch((err: { stdout: string }) => assert.fail(err.stdout));
    assert.equal(result.stdout, "");
  });

  it("its qodctl (the bundle) answers as the JSON API, through node_modules/.bin and npx", async () => {
    const bin = path.join(consumer, "node_modules", ".bin", "qodctl");
    const cli = await runCli(["-o", "json", "tenant", "list"], { entry: bin, cwd: consumer, env: { ...env, QOD_SERVER: app.grpcAddress, QOD_API_KEY: TEST_API_KEY } });
    assert.equal(cli.code, 0, cli.stderr);
    const res = await fetch(`${app.httpBase}/api/tenant/list`, { headers: { "X-API-Key": TEST_API_KEY } });
    assert.equal(cli.stdout, `${await res.text()}\n`);
    const { stdout: version } = await run("npx", ["--offline", "qodctl", "--version"], { cwd: consumer, env, encoding: "utf8" });
    assert.equal(version, `${(JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { version: string }).version}\n`);
  });
});
