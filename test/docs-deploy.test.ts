// The Docker Compose example of the README and deploy/README-deploy.md, run as written with
// `docker` and `curl` standing in (no Docker daemon here): it makes a private deploy/.env that git
// ignores, whose values pass compose.yaml's interpolation and the service's own configuration
// checks, and its curl line gets the API key from that file.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import YAML from "yaml";
import { ENV_VARIABLES, loadConfig } from "../src/config";
import { blockWith } from "./helpers/docs";
import { REPO_ROOT } from "./helpers/process";

const START = "cat > deploy/.env";

/** Compose's interpolation of `${NAME}`, `${NAME:-default}` and `${NAME:?error}` (an unset or empty NAME is an error). */
function interpolate(value: string, env: Record<string, string>): string {
  return value.replace(/\$\{(\w+)(?::([-?])([^}]*))?\}/g, (_, name: string, op?: string, arg?: string) => {
    const given = env[name];
    if (given !== undefined && given !== "") return given;
    if (op === "-") return arg ?? "";
    throw new Error(`compose would stop: ${arg ?? name}`);
  });
}

describe("the Docker Compose example (README, deploy/README-deploy.md)", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), "qod-compose-example-"));
    mkdirSync(path.join(dir, "deploy"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("is the same block in both", () => {
    assert.equal(blockWith("README.md", START), blockWith("deploy/README-deploy.md", START));
  });

  it("runs as written: a private deploy/.env the service accepts through compose.yaml, and the curl line carries its API key", () => {
    const standIns = `docker() { printf 'docker %s\\n' "$*" >> calls; }\ncurl() { printf 'curl %s\\n' "$*" >> calls; }\n`;
    execFileSync("bash", ["-c", `set -euo pipefail\n${standIns}${blockWith("README.md", START)}`], { cwd: dir, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir } });

    const file = path.join(dir, "deploy", ".env");
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const dotEnv = Object.fromEntries(
      readFileSync(file, "utf8")
        .trim()
        .split("\n")
        .map((line) => line.split(/=(.*)/s).slice(0, 2) as [string, string]),
    );
    const calls = readFileSync(path.join(dir, "calls"), "utf8").trim().split("\n");
    assert.deepEqual(calls[0], "docker compose -f deploy/compose.yaml up --build -d");
    assert.match(calls[1] ?? "", /^curl -sS --retry \d+ --retry-connrefused .*-H X-API-Key: (\S+) localhost:20900\/api\/tenant\/list$/);
    assert.equal(/X-API-Key: (\S+)/.exec(calls[1] ?? "")?.[1], dotEnv.QOD_API_KEY);

    const compose = YAML.parse(readFileSync(path.join(REPO_ROOT, "deploy", "compose.yaml"), "utf8")) as {
      services: Record<string, { environment: Record<string, string> }>;
    };
    const env = Object.fromEntries(Object.entries(compose.services.qod.environment).map(([k, v]) => [k, interpolate(String(v), dotEnv)]));
    const config = loadConfig(env);
    assert.equal(config.apiKey, dotEnv.QOD_API_KEY);
    assert.equal(config.vaultEncKey, dotEnv.QOD_VAULT_ENC_KEY);
    assert.equal(interpolate(compose.services.postgres.environment.POSTGRES_PASSWORD, dotEnv), config.pg?.password, "the service logs in as the postgres service's user");
  });

  it("deploy/.env is ignored by git", () => {
    execFileSync("git", ["check-ignore", "-q", "deploy/.env"], { cwd: REPO_ROOT });
  });

  it("the data plane's TLS snippet names variables the service reads", () => {
    const snippet = YAML.parse(blockWith("deploy/README-deploy.md", "QOD_EDGE_TLS_CERT")) as { qod: { environment: Record<string, string> } };
    const names = Object.keys(snippet.qod.environment);
    assert.deepEqual(names, ["QOD_EDGE_TLS_CERT", "QOD_EDGE_TLS_KEY"]);
    for (const name of names) assert.ok(ENV_VARIABLES.includes(name), name);
  });
});
