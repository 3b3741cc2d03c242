-- Up Migration
-- The state the data plane applies (SPEC §10) and Supavisor's tenant API (§11), on the one model:
-- a Supavisor tenant is a tenant, its upstream is a database of kind `external`, its users are pools.

-- What the data plane checks for every tenant at a handshake.
ALTER TABLE tenants
  ADD COLUMN banned_at    timestamptz,
  ADD COLUMN ban_reason   text,
  -- The ban holds until this time (inclusive); NULL with banned_at set: until unbanned.
  ADD COLUMN banned_until timestamptz,
  ADD COLUMN enforce_ssl  boolean NOT NULL DEFAULT false,
  -- CIDRs clients may come from; empty: anywhere.
  ADD COLUMN allow_list   text[]  NOT NULL DEFAULT '{}',
  -- A terminate request: every replica ends the sessions opened before it.
  ADD COLUMN terminated_at timestamptz,
  ADD CONSTRAINT tenants_ban_check CHECK (banned_at IS NOT NULL OR (ban_reason IS NULL AND banned_until IS NULL));

-- Upstreams registered rather than provisioned (kind `external`), and how the pooler reaches them.
ALTER TABLE databases
  DROP CONSTRAINT databases_kind_check,
  ADD CONSTRAINT databases_kind_check CHECK (kind IN ('ducklake', 'duckdb-file', 'memory', 'external')),
  ADD COLUMN upstream_tls text NOT NULL DEFAULT 'disable'
    CONSTRAINT databases_upstream_tls_check CHECK (upstream_tls IN ('disable', 'require', 'verify-full')),
  -- The CA (PEM) that `verify-full` trusts.
  ADD COLUMN upstream_tls_ca text,
  ADD COLUMN ip_version text NOT NULL DEFAULT 'auto'
    CONSTRAINT databases_ip_version_check CHECK (ip_version IN ('auto', 'v4', 'v6')),
  -- The upstream's server_version, read when its credentials were last checked.
  ADD COLUMN server_version text NOT NULL DEFAULT '';

-- A pool is a route of the data plane: clients log in as `name` (with the pool's password, checked
-- against `verifier`), and the pooler logs in to the pool's database as `upstream_user` with the
-- same password (`secret`, sealed with AES-256-GCM and bound to the pool's id).
ALTER TABLE pools
  DROP CONSTRAINT pools_size_check,
  ADD CONSTRAINT pools_size_check CHECK (size BETWEEN 1 AND 1000),
  ADD COLUMN upstream_user text    NOT NULL DEFAULT '',
  ADD COLUMN secret        bytea,
  ADD COLUMN verifier      text    NOT NULL DEFAULT '',
  ADD COLUMN mode          text    NOT NULL DEFAULT 'transaction'
    CONSTRAINT pools_mode_check CHECK (mode IN ('transaction', 'session')),
  -- Client sessions at once; NULL: the tenant's default.
  ADD COLUMN max_clients   integer CONSTRAINT pools_max_clients_check CHECK (max_clients > 0),
  ADD COLUMN checkout_timeout_ms integer NOT NULL DEFAULT 60000
    CONSTRAINT pools_checkout_timeout_check CHECK (checkout_timeout_ms >= 0),
  ADD COLUMN is_manager    boolean NOT NULL DEFAULT false,
  ADD COLUMN alias         text    NOT NULL DEFAULT '',
  ADD COLUMN disabled      boolean NOT NULL DEFAULT false,
  ADD COLUMN updated_at    timestamptz NOT NULL DEFAULT now();

-- Supavisor's own settings of a tenant registered through its API.
CREATE TABLE supavisor_tenants (
  tenant                    text        NOT NULL,
  id                        uuid        NOT NULL DEFAULT gen_random_uuid(),
  -- The upstream: the tenant's database of kind `external`.
  database_id               text        NOT NULL,
  require_user              boolean     NOT NULL,
  auth_query                text,
  default_pool_size         integer     NOT NULL DEFAULT 15,
  default_max_clients       integer     NOT NULL DEFAULT 1000,
  client_idle_timeout       integer     NOT NULL DEFAULT 0,
  client_heartbeat_interval integer     NOT NULL DEFAULT 60,
  sni_hostname              text,
  availability_zone         text,
  feature_flags             jsonb       NOT NULL DEFAULT '{}'::jsonb,
  use_jit                   boolean     NOT NULL DEFAULT false,
  jit_api_url               text,
  -- Moved on by every write: an update reads it, works outside the transaction (the live check),
  -- and writes only if it has not moved meanwhile.
  version                   integer     NOT NULL DEFAULT 0,
  created_at                timestamptz NOT NULL DEFAULT now(),
  updated_at                timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT supavisor_tenants_pkey PRIMARY KEY (tenant),
  CONSTRAINT supavisor_tenants_tenant_fkey FOREIGN KEY (tenant) REFERENCES tenants (name) ON DELETE CASCADE,
  CONSTRAINT supavisor_tenants_database_fkey FOREIGN KEY (tenant, database_id) REFERENCES databases (tenant, id),
  CONSTRAINT supavisor_tenants_auth_query_check CHECK (require_user OR auth_query IS NOT NULL),
  CONSTRAINT supavisor_tenants_sizes_check CHECK (default_pool_size > 0 AND default_max_clients > 0
    AND client_idle_timeout >= 0 AND client_heartbeat_interval >= 0)
);

-- Every replica's data plane and tenant cache hear of these changes too (migration 0004's function).
CREATE TRIGGER databases_notify_changed AFTER INSERT OR UPDATE OR DELETE ON databases
  FOR EACH ROW EXECUTE FUNCTION notify_tenant_changed();
CREATE TRIGGER supavisor_tenants_notify_changed AFTER INSERT OR UPDATE OR DELETE ON supavisor_tenants
  FOR EACH ROW EXECUTE FUNCTION notify_tenant_changed();
CREATE TRIGGER databases_notify_truncated AFTER TRUNCATE ON databases
  FOR EACH STATEMENT EXECUTE FUNCTION notify_tenant_changed();
CREATE TRIGGER supavisor_tenants_notify_truncated AFTER TRUNCATE ON supavisor_tenants
  FOR EACH STATEMENT EXECUTE FUNCTION notify_tenant_changed();
