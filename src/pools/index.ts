// What other parts of the service use of the pools domain.
export { poolHandlers, type PoolDeps, type PoolStatsSource } from "./handlers";
export { loadRoutes, type RouteDeps, type TenantRoutes } from "./routes";
export { countPools } from "./queries";
export { POOL_GRACE_MS, settleAbandonedPools } from "./settle";
