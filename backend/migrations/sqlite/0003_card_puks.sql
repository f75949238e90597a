-- Each card's PUK, sealed (AES-256-GCM under the key-encryption key, bound to the card's GUID),
-- and the pending PUK an unlock has chosen but the card has not yet confirmed: recorded before
-- the PUK is released, so a crash between the card's two commands never loses it (DESIGN.md).
ALTER TABLE cards ADD COLUMN puk_sealed BLOB;
ALTER TABLE cards ADD COLUMN puk_pending_sealed BLOB;
ALTER TABLE cards ADD COLUMN puk_version BIGINT NOT NULL DEFAULT 0;
