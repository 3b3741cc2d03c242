// What other parts of the service use of the pools domain.
export { poolHandlers } from "./handlers";
