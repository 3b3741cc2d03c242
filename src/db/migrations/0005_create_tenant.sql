-- Up Migration
-- CreateTenant's two writes, the tenant and its audit row, as one function. PL/pgSQL keeps the
-- plans of its statements for the session, where the same statements sent by the service would
-- be parsed and planned on every call (slonik sends no prepared statements): measured with
-- pgbench, planning was ~40% of the create's Postgres CPU. One call is atomic without BEGIN.
CREATE FUNCTION create_tenant(
  p_name text, p_display_name text, p_auth_provider text, p_auth_config jsonb,
  p_actor text, p_request_id text, p_details jsonb
) RETURNS tenants LANGUAGE plpgsql AS $$
DECLARE
  created tenants;
BEGIN
  INSERT INTO tenants (name, display_name, auth_provider, auth_config)
  VALUES (p_name, p_display_name, p_auth_provider, p_auth_config)
  RETURNING * INTO created;
  INSERT INTO audit_log (actor, action, tenant, request_id, details)
  VALUES (p_actor, 'tenant.create', p_name, p_request_id, p_details);
  RETURN created;
END
$$;
