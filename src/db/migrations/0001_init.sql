-- Up Migration
-- The control plane's state. Formats are validated by the service; constraints guard integrity,
-- and their names are what src/db/errors.ts maps to client errors.

CREATE TABLE tenants (
  name          text        NOT NULL,
  display_name  text        NOT NULL,
  disabled      boolean     NOT NULL DEFAULT false,
  auth_provider text        NOT NULL DEFAULT 'db',
  auth_config   jsonb       NOT NULL DEFAULT '{}'::jsonb,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT tenants_pkey PRIMARY KEY (name),
  CONSTRAINT tenants_display_name_key UNIQUE (display_name),
  CONSTRAINT tenants_auth_provider_check CHECK (auth_provider IN ('db', 'keycloak', 'google', 'azure', 'aws'))
);

-- One row per tenant database. The full name is unique across the whole server: it is the
-- Postgres database's name.
CREATE TABLE databases (
  id                  text        NOT NULL,
  tenant              text        NOT NULL,
  name                text        NOT NULL,
  suffix              text        NOT NULL,
  kind                text        NOT NULL,
  data_path           text        NOT NULL DEFAULT '',
  effective_data_path text        NOT NULL DEFAULT '',
  metastore           jsonb       NOT NULL DEFAULT '{}'::jsonb,
  object_store        jsonb       NOT NULL DEFAULT '{}'::jsonb,
  -- AES-256-GCM ciphertext of the secret entries of metastore and object_store.
  secrets             bytea,
  default_database    text        NOT NULL DEFAULT '',
  default_schema      text        NOT NULL DEFAULT '',
  disabled            boolean     NOT NULL DEFAULT false,
  status              text        NOT NULL,
  status_message      text        NOT NULL DEFAULT '',
  request_id          text,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT databases_pkey PRIMARY KEY (id),
  CONSTRAINT databases_name_key UNIQUE (name),
  CONSTRAINT databases_tenant_id_key UNIQUE (tenant, id),
  CONSTRAINT databases_request_id_key UNIQUE (tenant, request_id),
  CONSTRAINT databases_tenant_fkey FOREIGN KEY (tenant) REFERENCES tenants (name) ON DELETE CASCADE,
  CONSTRAINT databases_kind_check CHECK (kind IN ('ducklake', 'duckdb-file', 'memory')),
  CONSTRAINT databases_status_check CHECK (status IN ('PROVISIONING', 'READY', 'FAILED', 'DELETING'))
);
CREATE INDEX databases_status_idx ON databases (status) WHERE status <> 'READY';

-- The pool registry. The foreign keys have no cascade: a tenant or database with pools cannot
-- be deleted, which is how `has_pools` is enforced without a racy check.
CREATE TABLE pools (
  id          text        NOT NULL,
  tenant      text        NOT NULL,
  database_id text        NOT NULL,
  name        text        NOT NULL,
  size        integer     NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pools_pkey PRIMARY KEY (id),
  CONSTRAINT pools_tenant_name_key UNIQUE (tenant, name),
  CONSTRAINT pools_tenant_fkey FOREIGN KEY (tenant) REFERENCES tenants (name),
  CONSTRAINT pools_database_fkey FOREIGN KEY (tenant, database_id) REFERENCES databases (tenant, id),
  CONSTRAINT pools_size_check CHECK (size BETWEEN 1 AND 64)
);
CREATE INDEX pools_database_idx ON pools (database_id);

-- Database-backed users. tenant NULL is the superuser realm.
CREATE TABLE users (
  id            text        NOT NULL,
  tenant        text,
  username      text        NOT NULL,
  password_hash text        NOT NULL,
  role          text        NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT users_pkey PRIMARY KEY (id),
  CONSTRAINT users_tenant_fkey FOREIGN KEY (tenant) REFERENCES tenants (name) ON DELETE CASCADE,
  CONSTRAINT users_role_check CHECK (role IN ('admin', 'user'))
);
CREATE UNIQUE INDEX users_realm_username_key ON users (coalesce(tenant, ''), username);

-- Revoked session tokens, kept until they would have expired anyway.
CREATE TABLE revoked_tokens (
  jti        text        NOT NULL,
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT revoked_tokens_pkey PRIMARY KEY (jti)
);
CREATE INDEX revoked_tokens_expires_idx ON revoked_tokens (expires_at);

-- Personal access tokens: only a hash of the secret is kept.
CREATE TABLE access_tokens (
  id           text        NOT NULL,
  user_id      text        NOT NULL,
  name         text        NOT NULL,
  token_hash   bytea       NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL,
  last_used_at timestamptz,
  revoked_at   timestamptz,
  CONSTRAINT access_tokens_pkey PRIMARY KEY (id),
  CONSTRAINT access_tokens_token_hash_key UNIQUE (token_hash),
  CONSTRAINT access_tokens_user_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);
CREATE INDEX access_tokens_user_idx ON access_tokens (user_id, created_at DESC);

-- Who changed what. Written in the same transaction as the change.
CREATE TABLE audit_log (
  id         bigint GENERATED ALWAYS AS IDENTITY,
  at         timestamptz NOT NULL DEFAULT now(),
  actor      text        NOT NULL,
  action     text        NOT NULL,
  tenant     text,
  target     text,
  request_id text,
  details    jsonb       NOT NULL DEFAULT '{}'::jsonb,
  CONSTRAINT audit_log_pkey PRIMARY KEY (id)
);
CREATE INDEX audit_log_tenant_idx ON audit_log (tenant, at);
