-- Up Migration
-- A password change ends the account's other sessions. Each session token carries the
-- account's `session_epoch` from when it was issued, and counts only while that is still the
-- account's epoch, or while it is `kept_session` (the jti of the session the change was made
-- with, which the user keeps). A change moves the epoch on. No clocks are compared.
ALTER TABLE users
  ADD COLUMN session_epoch integer NOT NULL DEFAULT 0,
  ADD COLUMN kept_session text;
