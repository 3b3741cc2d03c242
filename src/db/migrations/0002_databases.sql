-- Up Migration
-- Provisioning state of DatabaseService (src/databases). See src/databases/reconcile.ts for the
-- lifecycle these columns record.

ALTER TABLE databases
  -- The AppError reason of a FAILED create, so a repeat of that request answers the same error.
  ADD COLUMN status_reason text NOT NULL DEFAULT '',
  -- Set just before CREATE DATABASE is sent. While it is NULL the Postgres database of that name,
  -- if any, was not made by this row, so recovery must never drop it.
  ADD COLUMN provisioning_started_at timestamptz;

-- A tenant delete cascades to its database rows. A PROVISIONING row is the only record of a
-- Postgres database being created; losing it would orphan that database, so the cascade (or
-- any other delete) of such a row is refused until provisioning has settled.
CREATE FUNCTION databases_refuse_provisioning_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'database % is being provisioned', OLD.name
    USING ERRCODE = 'check_violation', CONSTRAINT = 'databases_provisioning_check', TABLE = 'databases';
END;
$$;

CREATE TRIGGER databases_provisioning_check
  BEFORE DELETE ON databases
  FOR EACH ROW WHEN (OLD.status = 'PROVISIONING')
  EXECUTE FUNCTION databases_refuse_provisioning_delete();
