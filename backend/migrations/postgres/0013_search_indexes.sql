-- RA search over a million people (issue 16): a name or email fragment is matched anywhere in the
-- text, which a B-tree cannot answer; trigram indexes can (pg_trgm ships with PostgreSQL and is a
-- trusted extension, so the database's owner may create it).
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX users_name_trigrams ON users USING gin (LOWER(name) gin_trgm_ops);
CREATE INDEX users_email_trigrams ON users USING gin (LOWER(COALESCE(contact_email, '')) gin_trgm_ops);
-- Results come by name: a common surname's thousands of matches are sorted from this.
CREATE INDEX users_by_name ON users (name, user_id);
-- A person's audit trail is the events about them or done by them: without this, the "done by"
-- half made PostgreSQL walk the whole log newest first (issue 16: seconds at a year of a
-- million people's activity).
CREATE INDEX audit_log_actor ON audit_log (actor, at);
