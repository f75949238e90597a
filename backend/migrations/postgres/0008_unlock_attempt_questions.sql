-- The questions an unlock attempt asked, one row each in the order asked (they were a
-- comma-separated column). Attempts in progress keep theirs.
CREATE TABLE unlock_attempt_questions (
    attempt_id  TEXT    NOT NULL REFERENCES unlock_attempts (id) ON DELETE CASCADE,
    position    BIGINT  NOT NULL,
    question_id BIGINT  NOT NULL,
    PRIMARY KEY (attempt_id, position)
);

INSERT INTO unlock_attempt_questions (attempt_id, position, question_id)
SELECT a.id, q.position, q.item::BIGINT
FROM unlock_attempts a, unnest(string_to_array(a.question_ids, ',')) WITH ORDINALITY AS q (item, position)
WHERE q.item <> '';

ALTER TABLE unlock_attempts DROP COLUMN question_ids;
