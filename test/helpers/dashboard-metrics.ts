// The metrics deploy/grafana/qod-dashboard.json may query: test/deploy-metrics.test.ts checks the
// dashboard against this list, test/observability.test.ts the list against a live scrape.

/**
 * Every series name the dashboard may query, as the service exports it (a histogram as its
 * _bucket, _sum and _count). test/observability.test.ts checks this list against a live scrape
 * of /metrics, so a renamed metric fails there and a dashboard typo fails here.
 */
export const DASHBOARD_METRICS: readonly string[] = [
  ...histogram("grpc_server_handling_seconds"),
  "grpc_server_started_total",
  "grpc_server_handled_total",
  ...histogram("qod_provisioning_seconds"),
  "qod_reconciler_passes_total",
  "qod_reconciler_actions_total",
  "qod_tenant_cache_lookups_total",
  "qod_state_pool_connections",
  "qod_state_pool_waiting",
  "qod_login_throttled_total",
  "qod_ready",
  "qod_pool_clients",
  "qod_pool_clients_active",
  "qod_pool_clients_waiting",
  "qod_pool_servers",
  "qod_pool_transactions_total",
  "qod_pool_queries_total",
  "qod_pool_wait_seconds_total",
  "qod_edge_connections",
  "qod_edge_engines",
  "qod_edge_engine_restarts_total",
  // prom-client's default metrics.
  "process_cpu_seconds_total",
  "process_resident_memory_bytes",
  "process_open_fds",
  "nodejs_eventloop_lag_p99_seconds",
  "nodejs_heap_size_used_bytes",
];

function histogram(name: string): string[] {
  return [`${name}_bucket`, `${name}_sum`, `${name}_count`];
}

/** The metric a series name belongs to: a histogram's series share one. */
export const family = (name: string) => name.replace(/_(bucket|sum|count)$/, "");
