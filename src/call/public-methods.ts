// The methods callable without a credential, declared once. The authenticate middleware skips
// exactly these paths, and the handlers' types give exactly these methods a context without a
// principal, so the two cannot disagree. (Health and reflection are not behind the middleware.)
import type { ServiceDefinition } from "@grpc/grpc-js";
import { AuthServiceService } from "../../gen/qod/v1/auth";
import { SupavisorServiceService } from "../../gen/qod/v1/supavisor";

const publicMethods = <D extends ServiceDefinition, const K extends keyof D & string>(definition: D, methods: readonly K[]) => ({ definition, methods });

const PUBLIC = {
  /** Login and the OIDC exchange are how a caller gets a credential. */
  auth: publicMethods(AuthServiceService, ["login", "exchangeOidcToken"]),
  /** Supavisor's `/api/health` is open, as in Supavisor. */
  supavisor: publicMethods(SupavisorServiceService, ["supavisorHealth"]),
};

/** The public methods of one service, by handler name: ServiceHandlers' `Public` parameter. */
export type PublicMethodsOf<S extends keyof typeof PUBLIC> = (typeof PUBLIC)[S]["methods"][number];

/** Their gRPC paths, e.g. `/qod.v1.AuthService/Login`. */
export const PUBLIC_METHOD_PATHS: ReadonlySet<string> = new Set(
  Object.values(PUBLIC).flatMap(({ definition, methods }) => methods.map((method) => (definition as ServiceDefinition)[method].path)),
);
