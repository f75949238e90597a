-- Expired sessions and challenges are swept as new ones are made (no separate job): these keep
-- that sweep an index range instead of a scan of every live session.
CREATE INDEX sessions_expires ON sessions (expires_at);
CREATE INDEX sessions_last_seen ON sessions (last_seen_at);
CREATE INDEX challenges_expires ON challenges (expires_at);
