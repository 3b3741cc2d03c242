-- Up Migration
-- Failed logins per key (`user:<tenant>:<username>` or `source:<address>`), counted in a fixed
-- window that starts at the key's first failure. A table rather than process memory, so every
-- replica sharing this database sees the same counts. UNLOGGED: the counters are disposable,
-- and skipping the WAL keeps the write on each failed login cheap.
CREATE UNLOGGED TABLE login_failures (
  key               text        NOT NULL,
  window_started_at timestamptz NOT NULL DEFAULT now(),
  failures          integer     NOT NULL,
  CONSTRAINT login_failures_pkey PRIMARY KEY (key)
);
CREATE INDEX login_failures_window_idx ON login_failures (window_started_at);
