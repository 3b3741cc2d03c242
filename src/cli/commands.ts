// qodctl's command table: one group per resource, one command per RPC (named by its proto
// name), positional arguments for the identifying fields. Every other field of the request
// becomes a flag by itself (its proto comment is the help), and `-f` takes the whole request as
// the API's JSON, so each field is reachable without an entry here.
//
// Adding a service is one group (and a view in views.ts if its tables should show chosen columns);
// SupavisorService below is an example. The parts this file cannot check
// (RPC and field names) are checked when the program is built, which test/cli-units.test.ts does.
import type { GeneratedService, GeneratedServiceDefinition } from "../client/clients";
import { AUTH_SERVICE, DATABASE_SERVICE, POOL_SERVICE, SUPAVISOR_SERVICE, TENANT_SERVICE } from "../client/clients";

type JsonScalar = string | number | boolean;

/** A request field read from a no-echo prompt or stdin's lines, never from a flag. */
export interface SecretField {
  field: string;
  prompt: string;
  /** Asked twice on a terminal (a new password). */
  confirm?: boolean;
}

/** A positional argument: the request field it sets (JSON name), shown as `<name>`. */
export type Argument = string | { field: string; name: string };

export interface RpcCommand {
  name: string;
  /** The RPC's proto name (`CreateTenant`). */
  rpc: string;
  /** One line for the command list; default: the RPC's proto comment. */
  summary?: string;
  args?: readonly Argument[];
  /** Flag names that differ from the field's (JSON name → flag, e.g. dropDatabase → "drop"). */
  flags?: Readonly<Record<string, string>>;
  /** Fields without a flag (aliases, idempotency keys): still settable with -f. */
  hidden?: readonly string[];
  /** Fields the command sets itself (`tenant disable` → disabled: true). */
  fixed?: Readonly<Record<string, JsonScalar>>;
  secrets?: readonly SecretField[];
  /** Shown under `--help`; at least one. */
  examples: readonly string[];
  /** Spinner text shown at once (a long call such as provisioning); undefined shows the default after ~300 ms. */
  progress?: (request: Readonly<Record<string, unknown>>) => string | undefined;
  /** What a table prints for an empty response. */
  done?: (request: Readonly<Record<string, unknown>>) => string;
}

export interface CommandGroup {
  /** Words before the command: `["tenant"]`, `["supavisor", "tenant"]`, or `[]` for top-level commands. */
  path: readonly string[];
  summary: string;
  aliases?: readonly string[];
  service?: GeneratedService<GeneratedServiceDefinition>;
  commands?: readonly RpcCommand[];
}

const str = (value: unknown) => (typeof value === "string" ? value : "");

export const GROUPS: readonly CommandGroup[] = [
  {
    path: ["tenant"],
    aliases: ["tenants"],
    summary: "Tenants: isolation boundaries that own databases and pools and pick an auth provider",
    service: TENANT_SERVICE,
    commands: [
      {
        name: "create",
        rpc: "CreateTenant",
        summary: "Create a tenant (superusers only)",
        args: ["name"],
        hidden: ["id"],
        examples: [
          "qodctl tenant create acme",
          "qodctl tenant create acme --display-name 'Acme Corp' --auth-provider keycloak --auth-config issuer=https://sso.acme.com,realm=acme",
        ],
      },
      { name: "list", rpc: "ListTenants", summary: "List the tenants you may see", examples: ["qodctl tenant list", "qodctl -o json tenant list"] },
      { name: "get", rpc: "GetTenant", summary: "Show one tenant", args: ["name"], examples: ["qodctl tenant get acme", "qodctl -o yaml tenant get acme"] },
      {
        name: "disable",
        rpc: "SetTenantDisabled",
        summary: "Disable a tenant: its pools refuse new connections and its users cannot log in",
        args: ["name"],
        fixed: { disabled: true },
        examples: ["qodctl tenant disable acme"],
      },
      {
        name: "enable",
        rpc: "SetTenantDisabled",
        summary: "Enable a disabled tenant again",
        args: ["name"],
        fixed: { disabled: false },
        examples: ["qodctl tenant enable acme"],
      },
      {
        name: "set-auth",
        rpc: "SetTenantAuth",
        summary: "Replace a tenant's auth provider and its configuration",
        args: ["name"],
        examples: ["qodctl tenant set-auth acme --auth-provider google --auth-config hd=acme.com", "qodctl tenant set-auth acme --auth-provider db"],
      },
      {
        name: "delete",
        rpc: "DeleteTenant",
        summary: "Delete a tenant, its users and its databases' rows (fails while it has pools)",
        args: ["name"],
        examples: ["qodctl tenant delete acme"],
        done: (request) => `Tenant ${str(request.name)} deleted.`,
      },
    ],
  },
  {
    path: ["db"],
    aliases: ["database", "databases"],
    summary: "Databases of a tenant: a Postgres database with a DuckLake catalog, a DuckDB file, or in memory",
    service: DATABASE_SERVICE,
    commands: [
      {
        name: "create",
        rpc: "CreateDatabase",
        summary: "Create a database (ducklake: provisions its Postgres database and catalog first)",
        args: ["tenant", "name"],
        flags: { defaultSchema: "schema" },
        examples: [
          "qodctl db create acme sales --kind ducklake --schema mart",
          "qodctl db create acme scratch --kind memory",
          "qodctl db create acme lake --data-path s3://bucket/acme/ --object-store region=eu-west-1 --metastore pgHost=10.0.0.5,pgPort=5432",
          "qodctl db create acme sales -f sales.json   # the request as /api/database/create's JSON body",
        ],
        progress: (request) => {
          const kind = str(request.kind) || "ducklake";
          return kind === "ducklake" ? `Provisioning ${str(request.tenant)}_${str(request.name)} (DuckLake catalog)` : undefined;
        },
      },
      { name: "list", rpc: "ListDatabases", summary: "List a tenant's databases", args: ["tenant"], examples: ["qodctl db list acme"] },
      { name: "get", rpc: "GetDatabase", summary: "Show one database", args: ["tenant", "name"], examples: ["qodctl db get acme sales", "qodctl db get acme acme_sales -o json"] },
      {
        name: "update",
        rpc: "UpdateDatabase",
        summary: "Change a database's metastore, object store, default database or schema",
        args: ["tenant", "name"],
        flags: { defaultSchema: "schema" },
        examples: ["qodctl db update acme sales --schema reporting", "qodctl db update acme sales --metastore pgHost=db2.internal,pgPort=5433"],
      },
      {
        name: "delete",
        rpc: "DeleteDatabase",
        summary: "Delete a database's row (its Postgres database is kept unless --drop)",
        args: ["tenant", "name"],
        flags: { dropDatabase: "drop" },
        examples: ["qodctl db delete acme sales", "qodctl db delete acme sales --drop"],
        done: (request) => `Database ${str(request.tenant)}/${str(request.name)} deleted${request.dropDatabase === true ? " and dropped" : ""}.`,
      },
      {
        name: "metastore-defaults",
        rpc: "GetMetastoreDefaults",
        summary: "Show the global metastore defaults databases inherit",
        examples: ["qodctl db metastore-defaults"],
      },
    ],
  },
  {
    path: ["pool"],
    aliases: ["pools"],
    summary: "Pools: what query clients connect to, each bound to one database",
    service: POOL_SERVICE,
    commands: [
      {
        name: "create",
        rpc: "CreatePool",
        summary: "Create a pool on a ducklake database of the tenant, with its Postgres role; prints its generated password, once",
        args: ["tenant", { field: "tenantDb", name: "database" }, "pool"],
        // A password of one's own goes in a file (-f), never on a command line.
        hidden: ["password"],
        examples: ["qodctl pool create acme sales bi --size 2", "qodctl -o json pool create acme sales etl --max-clients 50"],
      },
      { name: "list", rpc: "ListPools", summary: "List a tenant's pools, with this replica's live figures", args: ["tenant"], examples: ["qodctl pool list acme"] },
      {
        name: "disable",
        rpc: "SetPoolDisabled",
        summary: "Disable a pool: new connections are refused, open sessions continue",
        args: ["tenant", "pool"],
        fixed: { disabled: true },
        examples: ["qodctl pool disable acme bi"],
      },
      {
        name: "enable",
        rpc: "SetPoolDisabled",
        summary: "Enable a disabled pool again",
        args: ["tenant", "pool"],
        fixed: { disabled: false },
        examples: ["qodctl pool enable acme bi"],
      },
      {
        name: "scale",
        rpc: "ScalePool",
        summary: "Change a pool's size (server connections), live",
        args: ["tenant", "pool", "size"],
        examples: ["qodctl pool scale acme bi 5"],
      },
      {
        name: "delete",
        rpc: "DeletePool",
        summary: "Delete a pool: its connections are closed and its Postgres role dropped",
        args: ["tenant", "pool"],
        examples: ["qodctl pool delete acme bi"],
        done: (request) => `Pool ${str(request.tenant)}/${str(request.pool)} deleted.`,
      },
    ],
  },
  {
    path: ["user"],
    aliases: ["users"],
    summary: "Database-backed users of a tenant, or superusers (no --tenant)",
    service: AUTH_SERVICE,
    commands: [
      {
        name: "create",
        rpc: "CreateUser",
        summary: "Create a user; the password is prompted for, or read from stdin",
        args: ["username"],
        secrets: [{ field: "password", prompt: "Password", confirm: true }],
        examples: ["qodctl user create ann --tenant acme --role admin", "printf '%s\\n' \"$PASSWORD\" | qodctl user create ci --tenant acme --password-stdin"],
      },
      { name: "list", rpc: "ListUsers", summary: "List a tenant's users (superusers without --tenant)", examples: ["qodctl user list --tenant acme", "qodctl user list"] },
      {
        name: "delete",
        rpc: "DeleteUser",
        summary: "Delete a user",
        args: ["username"],
        examples: ["qodctl user delete ann --tenant acme"],
        done: (request) => `User ${str(request.username)} deleted.`,
      },
    ],
  },
  {
    path: ["pat"],
    aliases: ["access-token", "access-tokens"],
    summary: "Personal access tokens of the logged-in user",
    service: AUTH_SERVICE,
    commands: [
      {
        name: "create",
        rpc: "CreateAccessToken",
        summary: "Create a personal access token; its secret is shown only now",
        args: ["name"],
        examples: ["qodctl pat create ci --expire-time 30d", "qodctl pat create deploy --expire-time 2027-01-01T00:00:00Z"],
      },
      { name: "list", rpc: "ListAccessTokens", summary: "List your personal access tokens (never their secrets)", examples: ["qodctl pat list"] },
      {
        name: "revoke",
        rpc: "RevokeAccessToken",
        summary: "Revoke one of your personal access tokens",
        args: ["id"],
        examples: ["qodctl pat revoke pat-0123456789abcdef0123456789abcdef"],
        done: (request) => `Access token ${str(request.id)} revoked.`,
      },
    ],
  },
  {
    path: ["supavisor"],
    summary: "Supavisor's tenant API: tenants with their upstream and users, on the same model",
    service: SUPAVISOR_SERVICE,
    commands: [{ name: "health", rpc: "SupavisorHealth", summary: "Whether the service's state database answers (open: no credential)", examples: ["qodctl supavisor health"] }],
  },
  {
    path: ["supavisor", "tenant"],
    aliases: ["tenants"],
    summary: "Supavisor tenants: upstream, settings and users (each user a pool)",
    service: SUPAVISOR_SERVICE,
    commands: [
      {
        name: "put",
        rpc: "PutSupavisorTenant",
        summary: "Create or update a tenant (the body's `tenant` object in -f, as Supavisor's PUT takes it)",
        args: [{ field: "external_id", name: "external_id" }],
        examples: ["qodctl supavisor tenant put dev_tenant -f tenant.json   # tenant.json: {\"tenant\": {…}}"],
      },
      { name: "get", rpc: "GetSupavisorTenant", args: [{ field: "external_id", name: "external_id" }], examples: ["qodctl supavisor tenant get dev_tenant"] },
      {
        name: "ban",
        rpc: "PatchSupavisorTenant",
        summary: "Ban a tenant: its sessions end and new ones are refused (until --banned-until)",
        args: [{ field: "external_id", name: "external_id" }],
        fixed: { banned: true },
        examples: ["qodctl supavisor tenant ban dev_tenant --ban-reason abuse --banned-until 2030-01-01T00:00:00Z"],
      },
      {
        name: "unban",
        rpc: "PatchSupavisorTenant",
        summary: "Lift a tenant's ban",
        args: [{ field: "external_id", name: "external_id" }],
        fixed: { banned: false },
        hidden: ["ban_reason", "banned_until"],
        examples: ["qodctl supavisor tenant unban dev_tenant"],
      },
      {
        name: "delete",
        rpc: "DeleteSupavisorTenant",
        args: [{ field: "external_id", name: "external_id" }],
        examples: ["qodctl supavisor tenant delete dev_tenant"],
        done: (request) => `Tenant ${str(request.external_id)} deleted.`,
      },
      {
        name: "terminate",
        rpc: "TerminateSupavisorTenant",
        args: [{ field: "external_id", name: "external_id" }],
        examples: ["qodctl supavisor tenant terminate dev_tenant"],
      },
      {
        name: "update-auth-credentials",
        rpc: "UpdateSupavisorAuthCredentials",
        args: [{ field: "external_id", name: "external_id" }, { field: "db_user", name: "db_user" }],
        secrets: [{ field: "db_password", prompt: "Manager's new password" }],
        examples: ["qodctl supavisor tenant update-auth-credentials dev_tenant postgres"],
        done: (request) => `Credentials of ${str(request.external_id)}'s manager updated.`,
      },
    ],
  },
  {
    path: [],
    summary: "",
    service: AUTH_SERVICE,
    commands: [
      { name: "whoami", rpc: "WhoAmI", summary: "Show who you are to the server and what you may manage", examples: ["qodctl whoami"] },
      {
        name: "passwd",
        rpc: "ChangePassword",
        summary: "Change your password (or --username's); your other sessions end",
        secrets: [
          { field: "currentPassword", prompt: "Current password" },
          { field: "newPassword", prompt: "New password", confirm: true },
        ],
        examples: ["qodctl passwd", "printf '%s\\n%s\\n' \"$OLD\" \"$NEW\" | qodctl passwd --password-stdin"],
        done: () => "Password changed.",
      },
    ],
  },
];
