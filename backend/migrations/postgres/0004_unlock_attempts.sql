-- Unlocking a card (journey 2). Failed question attempts count per person, across sessions and
-- instances; the third locks the person out of self-service until an RA clears it.
ALTER TABLE users ADD COLUMN unlock_failures BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN unlock_locked_at BIGINT;

-- One unlock in progress per card: the questions are chosen once, so a reload shows the same ones.
CREATE TABLE unlock_attempts (
    id          TEXT    PRIMARY KEY,         -- random; the page's handle on this attempt
    user_ref    BIGINT  NOT NULL REFERENCES users (id),
    card_guid   TEXT    NOT NULL,
    question_ids TEXT   NOT NULL,            -- comma-separated catalogue ids, in the order asked
    status      TEXT    NOT NULL,            -- questions | code | done | failed
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL
);
CREATE INDEX unlock_attempts_card ON unlock_attempts (card_guid, status);
