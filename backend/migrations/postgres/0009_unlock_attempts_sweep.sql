-- Ended unlock attempts are swept as new ones are made (what happened stays in the audit
-- trail): this keeps that sweep an index range.
CREATE INDEX unlock_attempts_expires ON unlock_attempts (expires_at);
