-- Up Migration
-- A pool CreatePool makes has a Postgres role on its database's server. The row is written first
-- and the role made after (a server is never contacted inside a state transaction), so the row says
-- where that stands: `creating` until the role exists (the data plane routes only `ready` pools),
-- `dropping` from a DeletePool until the role is gone and the row deleted. A crash in between is
-- finished by the reconciler. Supavisor's users log in as roles that already exist: `ready`.
ALTER TABLE pools
  ADD COLUMN role_state text NOT NULL DEFAULT 'ready'
    CONSTRAINT pools_role_state_check CHECK (role_state IN ('creating', 'ready', 'dropping'));
CREATE INDEX pools_role_state_idx ON pools (role_state) WHERE role_state <> 'ready';
