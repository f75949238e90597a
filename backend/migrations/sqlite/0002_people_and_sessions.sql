-- People, their cards, self-service registrations, one-time codes and challenges, sessions and
-- the mail outbox (DESIGN.md). Times are Unix seconds; hashes and keys are bytes.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       TEXT    NOT NULL UNIQUE,   -- the person's identifier as the organisation knows it
    name          TEXT    NOT NULL,
    contact_email TEXT,                      -- from their contact details; registration pre-fills it
    roles         TEXT    NOT NULL DEFAULT '', -- space-separated: 'ra'
    created_at    BIGINT  NOT NULL
);

CREATE TABLE cards (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    guid                  TEXT    NOT NULL UNIQUE, -- CHUID GUID, 32 lowercase hex digits
    user_ref              BIGINT  NOT NULL REFERENCES users (id),
    piv_auth_key          BLOB    NOT NULL,        -- 9A public key, SubjectPublicKeyInfo DER
    card_auth_key         BLOB    NOT NULL,        -- 9E public key, SubjectPublicKeyInfo DER
    piv_auth_certificate  BLOB,
    card_auth_certificate BLOB,
    status                TEXT    NOT NULL DEFAULT 'active', -- active | suspended | revoked
    issued_at             BIGINT  NOT NULL
);
CREATE INDEX cards_user ON cards (user_ref);

-- At most one active and one pending registration per person: a re-registration stays pending
-- (and the old one stays in force) until its emailed code is entered.
CREATE TABLE registrations (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_ref      BIGINT  NOT NULL REFERENCES users (id),
    status        TEXT    NOT NULL,          -- pending | active
    email         TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    registered_at BIGINT,
    UNIQUE (user_ref, status)
);

CREATE TABLE registration_answers (
    registration_ref BIGINT  NOT NULL REFERENCES registrations (id) ON DELETE CASCADE,
    position         INTEGER NOT NULL,       -- 1..4, the order the person chose
    question_id      INTEGER NOT NULL,
    answer_hash      TEXT    NOT NULL,       -- argon2id PHC string
    PRIMARY KEY (registration_ref, position)
);

CREATE TABLE one_time_codes (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_ref     BIGINT  NOT NULL REFERENCES users (id),
    purpose      TEXT    NOT NULL,           -- registration | unlock
    code_hash    BLOB    NOT NULL,           -- HMAC-SHA-256 of the code under a server key
    created_at   BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    tries_left   INTEGER NOT NULL,
    used_at      BIGINT
);
CREATE INDEX one_time_codes_user ON one_time_codes (user_ref, purpose, created_at);

CREATE TABLE challenges (
    id           TEXT    PRIMARY KEY,        -- random, URL-safe
    purpose      TEXT    NOT NULL,           -- sign_in | registration_proof | unlock
    challenge    BLOB    NOT NULL,           -- 32 random bytes the card signs
    session_ref  TEXT,                       -- the session a re-proof belongs to
    expires_at   BIGINT  NOT NULL,
    used_at      BIGINT
);

CREATE TABLE sessions (
    token_hash   BLOB    PRIMARY KEY,        -- SHA-256 of the cookie's token; the token is never stored
    user_ref     BIGINT  NOT NULL REFERENCES users (id),
    card_guid    TEXT    NOT NULL,           -- the card that signed in; removing it signs out
    created_at   BIGINT  NOT NULL,
    last_seen_at BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    reproved_at  BIGINT                      -- last passcode re-proof (registration step 1)
);
CREATE INDEX sessions_user ON sessions (user_ref);

CREATE TABLE mail_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    to_addr         TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    claimed_until   BIGINT,                  -- a sender instance holds it until then
    sent_at         BIGINT,
    last_error      TEXT
);
CREATE INDEX mail_outbox_due ON mail_outbox (sent_at, next_attempt_at);

-- The newest audit hash, in one row: appending updates it first, which serialises concurrent
-- appenders (row lock in PostgreSQL, the write lock in SQLite) so the chain never forks.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    hash BLOB    NOT NULL
);
INSERT INTO audit_head (id, hash) VALUES (1, X'0000000000000000000000000000000000000000000000000000000000000000');
