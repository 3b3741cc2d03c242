-- Up Migration
-- Usernames are unique in their realm whatever their case: `Admin` and `admin` are one account
-- (logins look users up by lower(username) too). Names are kept as they were given.
-- A realm that already holds names differing only in case cannot take the new index: the
-- migration stops and names them, so an operator renames or deletes one of each pair first.
DO $$
DECLARE
  clashes text;
BEGIN
  SELECT string_agg(format('%s in realm %s', names, coalesce(nullif(realm, ''), '(superusers)')), '; ')
  INTO clashes
  FROM (
    SELECT coalesce(tenant, '') AS realm, string_agg(username, ', ' ORDER BY username) AS names
    FROM users GROUP BY coalesce(tenant, ''), lower(username) HAVING count(*) > 1
  ) duplicates;
  IF clashes IS NOT NULL THEN
    RAISE EXCEPTION 'usernames that differ only in case exist; rename or delete one of each before upgrading: %', clashes;
  END IF;
END
$$;

DROP INDEX users_realm_username_key;
CREATE UNIQUE INDEX users_realm_lower_username_key ON users (coalesce(tenant, ''), lower(username));
