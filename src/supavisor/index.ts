// What other parts of the service use of the Supavisor domain.
export { supavisorHandlers, type SupavisorDeps } from "./handlers";
