-- Releasing the PUK (journey 2): how often this attempt released it (bounded, so one attempt
-- cannot mint envelopes without end) and when the card was proved unlocked.
ALTER TABLE unlock_attempts ADD COLUMN releases BIGINT NOT NULL DEFAULT 0;
ALTER TABLE unlock_attempts ADD COLUMN unlocked_at BIGINT;
