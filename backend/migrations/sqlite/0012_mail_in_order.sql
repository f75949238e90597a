-- The outbox sends each address's mail in order (a message waits for older unsent ones to the
-- same address): this index answers "is an older one unsent?" without a scan.
CREATE INDEX mail_outbox_unsent_by_address ON mail_outbox (to_addr, id) WHERE sent_at IS NULL;
