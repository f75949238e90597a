-- The outbox sends each address's mail in order (a message waits for older unsent ones to the
-- same address): this index answers "is an older one unsent?" without a scan.
CREATE INDEX mail_outbox_unsent_by_address ON mail_outbox (to_addr, id) WHERE sent_at IS NULL;
-- A message given up (refused for good by the relay, or a day old): it no longer holds its
-- address's later mail.
ALTER TABLE mail_outbox ADD COLUMN failed_at BIGINT;
