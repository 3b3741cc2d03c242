-- Up Migration
-- A change to a tenant, or to the pools listed in it, notifies `qod_tenant_changed` with the
-- tenant's name when its transaction commits ('*' when a table is truncated). Every replica
-- listens and drops its cached copy (src/tenants/cache.ts), whichever replica, or hand-written
-- SQL, made the change. A new tenant needs no notice: only tenants that exist are cached.
CREATE FUNCTION notify_tenant_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    PERFORM pg_notify('qod_tenant_changed', '*');
  ELSIF TG_TABLE_NAME = 'tenants' THEN
    PERFORM pg_notify('qod_tenant_changed', OLD.name); -- a rename drops the old name
  ELSE
    -- Notices of one transaction with the same payload are sent once.
    IF TG_OP <> 'INSERT' THEN PERFORM pg_notify('qod_tenant_changed', OLD.tenant); END IF;
    IF TG_OP <> 'DELETE' THEN PERFORM pg_notify('qod_tenant_changed', NEW.tenant); END IF;
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER tenants_notify_changed AFTER UPDATE OR DELETE ON tenants
  FOR EACH ROW EXECUTE FUNCTION notify_tenant_changed();
CREATE TRIGGER pools_notify_changed AFTER INSERT OR UPDATE OR DELETE ON pools
  FOR EACH ROW EXECUTE FUNCTION notify_tenant_changed();
CREATE TRIGGER tenants_notify_truncated AFTER TRUNCATE ON tenants
  FOR EACH STATEMENT EXECUTE FUNCTION notify_tenant_changed();
CREATE TRIGGER pools_notify_truncated AFTER TRUNCATE ON pools
  FOR EACH STATEMENT EXECUTE FUNCTION notify_tenant_changed();
