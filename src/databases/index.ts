// What other parts of the service use of the databases domain.
export { databaseHandlers } from "./handlers";
export { createLifecycle, type Lifecycle } from "./lifecycle";
export { createReconciler } from "./reconcile";
export { createServers } from "./servers";
