-- Append-only, hash-chained audit trail of every security event (DESIGN.md, security model).
-- Each row's hash covers its own fields and the previous row's hash, so editing or deleting a
-- row breaks the chain from that row on.
CREATE TABLE audit_log (
    id          BIGSERIAL PRIMARY KEY,
    at          BIGINT  NOT NULL,          -- Unix seconds
    actor       TEXT    NOT NULL,          -- user id, 'anonymous', 'system'
    event       TEXT    NOT NULL,          -- e.g. 'sign_in', 'unlock_code_sent'
    subject     TEXT,                      -- the user or card the event is about
    details     TEXT    NOT NULL DEFAULT '{}', -- JSON, never secrets
    prev_hash   BYTEA   NOT NULL,
    hash        BYTEA   NOT NULL UNIQUE
);
CREATE INDEX audit_log_subject ON audit_log (subject, at);
CREATE INDEX audit_log_event ON audit_log (event, at);
