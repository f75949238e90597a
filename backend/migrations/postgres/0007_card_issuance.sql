-- Card issuance (RA console): each card's management key, sealed like its PUK (bound to the
-- GUID), and the issuances themselves. An issuance's secrets are chosen and recorded sealed
-- before anything reaches the agent, so a card left half-issued (pulled out, browser closed) can
-- always be finished by the next issuance of the same card: it finds them by the GUID on the card.
ALTER TABLE cards ADD COLUMN mgmt_key_sealed BYTEA;

CREATE TABLE issuances (
    id                    TEXT    PRIMARY KEY,        -- random, URL-safe
    user_ref              BIGINT  NOT NULL REFERENCES users (id),
    officer_ref           BIGINT  REFERENCES users (id), -- NULL: `backend admin issue-card`
    reason                TEXT    NOT NULL,
    card_guid             TEXT    NOT NULL,           -- the GUID written to the card's CHUID
    puk_sealed            BYTEA   NOT NULL,
    mgmt_key_sealed       BYTEA   NOT NULL,
    piv_auth_certificate  BYTEA,
    card_auth_certificate BYTEA,
    challenge             BYTEA,                      -- what the card's final proofs sign
    status                TEXT    NOT NULL,           -- started | certified | issued | superseded
    created_at            BIGINT  NOT NULL,
    expires_at            BIGINT  NOT NULL,
    finished_at           BIGINT
);
CREATE INDEX issuances_card ON issuances (card_guid, status);
