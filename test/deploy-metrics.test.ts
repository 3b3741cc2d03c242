// deploy/'s metrics stack, checked without Docker: the Grafana dashboard queries only metrics the
// service exports, Grafana's provisioning finds its files through compose's mounts, Prometheus
// scrapes the metrics port, and compose opens that port to it.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { DASHBOARD_METRICS, family } from "./helpers/dashboard-metrics";
import { REPO_ROOT } from "./helpers/process";


/** PromQL's aggregation operators, keywords and constants: identifiers that never name a metric. */
const NOT_METRICS = new Set([
  "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values", "group", "limitk", "limit_ratio",
  "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan",
]);

/**
 * The metric names a PromQL expression reads: identifiers before a selector's `{` or a range's
 * `[`, or bare, after strings, label matchers, ranges and the label lists of by/without/on/
 * ignoring/group_* are taken out. A name followed by `(` is a function.
 */
export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, "$1 ")
    .replace(/\{[^}]*\}/g, "{}")
    .replace(/\[[^\]]*\]/g, "[]")
    .replace(/\b\d[\w.+-]*/g, " ");
  const names = new Set<string>();
  for (const match of stripped.matchAll(/[A-Za-z_:][\w:]*/g)) {
    const rest = stripped.slice(match.index + match[0].length);
    if (/^\s*\(/.test(rest) || NOT_METRICS.has(match[0].toLowerCase())) continue;
    names.add(match[0]);
  }
  return [...names];
}

const DEPLOY = path.join(REPO_ROOT, "deploy");
const read = (file: string) => readFileSync(path.join(DEPLOY, file), "utf8");

interface Target {
  expr?: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  description?: string;
  datasource?: { type?: string; uid?: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: Target[];
  panels?: Panel[];
}
interface Variable {
  name: string;
  type: string;
  query: string | { query: string };
}
interface Dashboard {
  uid: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: Variable[] };
}

interface Service {
  image?: string;
  environment?: Record<string, string>;
  expose?: string[];
  ports?: string[];
  volumes?: string[];
}

describe("deploy/: Prometheus, Grafana and the dashboard", () => {
  const dashboard = JSON.parse(read("grafana/qod-dashboard.json")) as Dashboard;
  const compose = YAML.parse(read("compose.yaml")) as { services: Record<string, Service> };
  const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
  const queried = panels.filter((p) => p.type !== "row");
  const queries = [
    ...queried.flatMap((p) => (p.targets ?? []).map((t) => ({ where: p.title, expr: t.expr ?? "" }))),
    ...dashboard.templating.list
      .filter((v) => v.type === "query")
      .map((v) => ({ where: `$${v.name}`, expr: (typeof v.query === "string" ? v.query : v.query.query).replace(/^label_values\((.*),\s*\w+\)$/, "$1") })),
  ];

  /** Where compose mounts each of a service's host paths (relative to deploy/), with its options. */
  const mounts = (service: string) =>
    (compose.services[service]?.volumes ?? [])
      .map((v) => v.split(":"))
      .filter(([host]) => host?.startsWith("."))
      .map(([host = "", container = "", options = ""]) => ({ host: path.join(DEPLOY, host), container, options }));

  /** The host files compose puts at a container path: the file itself, or those under the directory. */
  const hostFiles = (service: string, container: string): string[] =>
    mounts(service).flatMap((m) => {
      if (container === m.container || container.startsWith(`${m.container}/`)) {
        const host = path.join(m.host, container.slice(m.container.length));
        if (!existsSync(host)) return [];
        return statSync(host).isDirectory() ? readdirSync(host).map((f) => path.join(host, f)) : [host];
      }
      return m.container.startsWith(`${container}/`) ? [m.host] : [];
    });

  describe("the dashboard", () => {
    it("extracts metric names from PromQL as it should (the check below is real)", () => {
      const cases: [string, string[]][] = [
        ['sum by (grpc_code) (rate(grpc_server_handled_total{job=~"$job", grpc_code!="OK"}[$__rate_interval]))', ["grpc_server_handled_total"]],
        ["histogram_quantile(0.99, sum by (le) (rate(a_bucket[5m])))", ["a_bucket"]],
        ["sum(rate(a_sum[1m])) / sum without (instance) (rate(a_count[1m])) > 0.5", ["a_sum", "a_count"]],
        ["up == bool 1 and on (job, instance) group_left (pool) qod_ready offset 5m", ["up", "qod_ready"]],
        ['max(nope{name="rate(x)"}) or vector(0)', ["nope"]],
        ["sum(increase(x:recorded[1h:5m])) unless irate(y[1m])", ["x:recorded", "y"]],
      ];
      for (const [expr, names] of cases) assert.deepEqual(metricNames(expr), names, expr);
    });

    it("queries only the metrics the service exports", () => {
      assert.ok(queries.length > 30, `${queries.length} queries`);
      const unknown = queries.flatMap(({ where, expr }) => metricNames(expr).filter((n) => !DASHBOARD_METRICS.includes(n)).map((n) => `${where}: ${n}`));
      assert.deepEqual(unknown, []);
    });

    it("shows every metric of the list somewhere", () => {
      const used = new Set(queries.flatMap(({ expr }) => metricNames(expr).map(family)));
      assert.deepEqual([...new Set(DASHBOARD_METRICS.map(family))].filter((f) => !used.has(f)), []);
    });

    it("is schema 39, with the Prometheus data source, job, tenant and pool as variables", () => {
      assert.equal(dashboard.schemaVersion, 39);
      const variables = new Map(dashboard.templating.list.map((v) => [v.name, v]));
      assert.deepEqual([...variables.keys()], ["datasource", "job", "tenant", "pool"]);
      assert.deepEqual({ type: variables.get("datasource")?.type, query: variables.get("datasource")?.query }, { type: "datasource", query: "prometheus" });
      const query = (name: string) => {
        const q = variables.get(name)?.query;
        return typeof q === "string" ? q : q?.query;
      };
      assert.match(query("tenant") ?? "", /^label_values\(qod_pool_clients\{.*\}, tenant\)$/);
      assert.match(query("pool") ?? "", /^label_values\(qod_pool_clients\{.*\}, pool\)$/);
    });

    it("has the rows in order, and every panel says what it shows and asks the chosen data source", () => {
      assert.deepEqual(
        panels.filter((p) => p.type === "row").map((p) => p.title),
        ["Overview", "RPCs", "Provisioning & reconciler", "Auth & cache", "Data plane", "Process"],
      );
      for (const panel of queried) {
        assert.ok((panel.description ?? "").length > 20, `${panel.title}: no description`);
        assert.deepEqual(panel.datasource, { type: "prometheus", uid: "${datasource}" }, panel.title);
        assert.ok(panel.targets?.length, `${panel.title}: no query`);
        for (const target of panel.targets ?? []) assert.deepEqual(target.datasource, panel.datasource, panel.title);
        assert.ok(panel.gridPos.x + panel.gridPos.w <= 24, `${panel.title}: wider than the grid`);
      }
      assert.equal(new Set(panels.map((p) => p.id)).size, panels.length, "panel ids are unique");
    });

    it("filters the data plane's per-pool metrics by the job, tenant and pool variables", () => {
      const exprs = queried.flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? ""));
      const selectors = exprs.flatMap((expr) => [...expr.matchAll(/\bqod_pool_\w+(\{[^}]*\})?/g)].map((m) => m[0]));
      assert.ok(selectors.length >= 8, `${selectors.length} selectors`);
      for (const selector of selectors) {
        for (const matcher of ['job=~"$job"', 'tenant=~"$tenant"', 'pool=~"$pool"']) assert.ok(selector.includes(matcher), `${selector} lacks ${matcher}`);
      }
    });
  });

  describe("Grafana's provisioning", () => {
    it("mounts files that exist, read-only", () => {
      const all = mounts("grafana");
      assert.ok(all.length >= 3);
      for (const m of all) {
        assert.ok(existsSync(m.host), `${m.host} is missing`);
        assert.equal(m.options, "ro", m.container);
      }
    });

    it("has the compose file's prometheus service as its data source, of the dashboard's type", () => {
      const files = hostFiles("grafana", "/etc/grafana/provisioning/datasources");
      assert.deepEqual(files.map((f) => path.relative(DEPLOY, f)), ["grafana/provisioning/datasources/prometheus.yaml"]);
      const { datasources } = YAML.parse(readFileSync(files[0] ?? "", "utf8")) as { datasources: { type: string; url: string; isDefault: boolean }[] };
      assert.equal(datasources.length, 1);
      assert.equal(datasources[0]?.type, "prometheus");
      assert.equal(datasources[0]?.isDefault, true);
      const url = new URL(datasources[0]?.url ?? "");
      assert.ok(compose.services[url.hostname], `no service ${url.hostname}`);
      assert.ok(compose.services[url.hostname]?.ports?.some((p) => p.endsWith(`:${url.port}`)), `${url.hostname} does not listen on ${url.port}`);
    });

    it("loads deploy/grafana/qod-dashboard.json through its dashboard provider, and opens on it", () => {
      const files = hostFiles("grafana", "/etc/grafana/provisioning/dashboards");
      assert.deepEqual(files.map((f) => path.relative(DEPLOY, f)), ["grafana/provisioning/dashboards/qod.yaml"]);
      const { providers } = YAML.parse(readFileSync(files[0] ?? "", "utf8")) as { providers: { type: string; options: { path: string } }[] };
      assert.equal(providers.length, 1);
      assert.equal(providers[0]?.type, "file");
      const dashboards = hostFiles("grafana", providers[0]?.options.path ?? "").filter((f) => f.endsWith(".json"));
      assert.deepEqual(dashboards.map((f) => path.relative(DEPLOY, f)), ["grafana/qod-dashboard.json"]);
      const home = compose.services.grafana?.environment?.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH ?? "";
      assert.deepEqual(hostFiles("grafana", home), dashboards);
    });

    it("lets anyone view and nobody sign in (no default admin password)", () => {
      const env = compose.services.grafana?.environment ?? {};
      assert.equal(env.GF_AUTH_ANONYMOUS_ENABLED, "true");
      assert.equal(env.GF_AUTH_ANONYMOUS_ORG_ROLE, "Viewer");
      assert.equal(env.GF_AUTH_DISABLE_LOGIN_FORM, "true");
      assert.equal(env.GF_AUTH_BASIC_ENABLED, "false");
    });
  });

  describe("Prometheus and compose", () => {
    it("scrapes every qod replica's metrics port, 9464, every 15 s", () => {
      const config = YAML.parse(read("prometheus.yml")) as {
        scrape_configs: { job_name: string; scrape_interval: string; dns_sd_configs: { names: string[]; type: string; port: number }[] }[];
      };
      const [job] = config.scrape_configs;
      assert.equal(job?.job_name, "qod");
      assert.equal(job?.scrape_interval, "15s");
      assert.deepEqual(job?.dns_sd_configs, [{ names: ["qod"], type: "A", port: 9464 }]);
      assert.ok(compose.services.qod, "the scraped name is the compose service's");
      assert.deepEqual(
        mounts("prometheus").map((m) => [path.relative(DEPLOY, m.host), m.container, m.options]),
        [["prometheus.yml", "/etc/prometheus/prometheus.yml", "ro"]],
      );
    });

    it("opens the qod service's metrics port to the compose network", () => {
      const qod = compose.services.qod;
      assert.equal(qod?.environment?.QOD_METRICS_HOST, "0.0.0.0");
      assert.ok(qod?.expose?.includes("9464"));
      assert.ok(!(qod?.ports ?? []).some((p) => p.endsWith(":9464")), "/metrics is never published on the host");
    });

    it("pins the images of prometheus and grafana to a version", () => {
      for (const name of ["prometheus", "grafana"]) assert.match(compose.services[name]?.image ?? "", /:v?\d+\.\d+\.\d+$/, name);
    });
  });
});
