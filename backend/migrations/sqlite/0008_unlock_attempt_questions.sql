-- The questions an unlock attempt asked, one row each in the order asked (they were a
-- comma-separated column). Attempts in progress keep theirs.
CREATE TABLE unlock_attempt_questions (
    attempt_id  TEXT    NOT NULL REFERENCES unlock_attempts (id) ON DELETE CASCADE,
    position    BIGINT  NOT NULL,
    question_id BIGINT  NOT NULL,
    PRIMARY KEY (attempt_id, position)
);

WITH RECURSIVE split (attempt_id, position, item, rest) AS (
    SELECT id, 0, NULL, question_ids || ',' FROM unlock_attempts
    UNION ALL
    SELECT attempt_id, position + 1, substr(rest, 1, instr(rest, ',') - 1), substr(rest, instr(rest, ',') + 1)
    FROM split WHERE rest <> ''
)
INSERT INTO unlock_attempt_questions (attempt_id, position, question_id)
SELECT attempt_id, position, CAST(item AS BIGINT) FROM split WHERE item IS NOT NULL AND item <> '';

ALTER TABLE unlock_attempts DROP COLUMN question_ids;
