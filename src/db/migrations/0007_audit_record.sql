-- Up Migration
-- CreateTenant's function takes its audit row as one jsonb record, built by the service's one
-- audit helper (src/db/audit.ts auditRecord), as every other audited statement reads it.
DROP FUNCTION create_tenant(text, text, text, jsonb, text, text, jsonb);

CREATE FUNCTION create_tenant(
  p_name text, p_display_name text, p_auth_provider text, p_auth_config jsonb, p_audit jsonb
) RETURNS tenants LANGUAGE plpgsql AS $$
DECLARE
  created tenants;
BEGIN
  INSERT INTO tenants (name, display_name, auth_provider, auth_config)
  VALUES (p_name, p_display_name, p_auth_provider, p_auth_config)
  RETURNING * INTO created;
  INSERT INTO audit_log (actor, action, tenant, target, request_id, details)
  SELECT a.actor, a.action, a.tenant, a.target, a.request_id, a.details
  FROM jsonb_to_record(p_audit) AS a(actor text, action text, tenant text, target text, request_id text, details jsonb);
  RETURN created;
END
$$;
