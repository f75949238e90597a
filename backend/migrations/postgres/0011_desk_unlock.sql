-- An RA unlocks a card at the desk: the attempt starts past the questions and the emailed code
-- (the RA checked who the holder is), and only that officer's console (or the operator's
-- command) may drive it. Self-service attempts have route 'self_service' and none of the rest.
ALTER TABLE unlock_attempts ADD COLUMN route TEXT NOT NULL DEFAULT 'self_service';
ALTER TABLE unlock_attempts ADD COLUMN desk_officer BIGINT NULL REFERENCES users (id);
ALTER TABLE unlock_attempts ADD COLUMN desk_identity_check TEXT NULL;
ALTER TABLE unlock_attempts ADD COLUMN desk_reason TEXT NULL;
