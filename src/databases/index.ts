// What other parts of the service use of the databases domain.
export { databaseHandlers } from "./handlers";
export { createLifecycle, RECONCILE_GRACE_MS, type Lifecycle } from "./lifecycle";
export { poolRoleOf } from "./roles";
export { createReconciler } from "./reconcile";
export { createServers, effectiveTarget } from "./servers";
