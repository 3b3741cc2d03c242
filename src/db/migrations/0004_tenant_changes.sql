-- Up Migration
-- A change to a tenant, or to the pools listed in it, notifies `qod_tenant_changed` with the
-- tenant's name when its transaction commits. Every replica listens and drops its cached copy
-- (src/tenants/cache.ts), whichever replica, or hand-written SQL, made the change. A new tenant
-- needs no notice: only tenants that exist are cached.
CREATE FUNCTION notify_tenant_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  changed record := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
BEGIN
  IF TG_TABLE_NAME = 'tenants' THEN
    PERFORM pg_notify('qod_tenant_changed', changed.name);
  ELSE
    PERFORM pg_notify('qod_tenant_changed', changed.tenant);
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER tenants_notify_changed AFTER UPDATE OR DELETE ON tenants
  FOR EACH ROW EXECUTE FUNCTION notify_tenant_changed();
CREATE TRIGGER pools_notify_changed AFTER INSERT OR UPDATE OR DELETE ON pools
  FOR EACH ROW EXECUTE FUNCTION notify_tenant_changed();
