-- RA search (issue 16). SQLite has no trigram index: a name or email fragment is matched by
-- scanning the people (fine for the one-site deployments SQLite is for; PostgreSQL indexes
-- it). Results come by name, from this index.
CREATE INDEX users_by_name ON users (name, user_id);
-- A person's audit trail is the events about them or done by them (issue 16).
CREATE INDEX audit_log_actor ON audit_log (actor, at);
