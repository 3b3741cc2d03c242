-- Up Migration
-- A password change ends the account's other sessions: a session counts only if it was issued
-- at or after `sessions_valid_from` (whole seconds, as a JWT's `iat`), or it is the session
-- the change was made with (`kept_session`, its jti), which the user keeps.
ALTER TABLE users
  ADD COLUMN sessions_valid_from timestamptz,
  ADD COLUMN kept_session text;
