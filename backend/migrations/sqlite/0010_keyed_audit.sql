-- The audit chain is keyed from here on: each new row's hash is an HMAC under a key kept outside
-- the database (derived from the server key), and the head carries a seal (an HMAC of the last
-- hash), so rows can be neither recomputed nor cut from the end without the key. Rows from
-- before keep their SHA-256 hashes; the first keyed row and the seal cover them.
ALTER TABLE audit_log ADD COLUMN keyed BIGINT NOT NULL DEFAULT 0;
ALTER TABLE audit_head ADD COLUMN seal BLOB;
