-- Each queued message sweeps the records of mail sent or given up over a week ago (`mail.rs`).
-- With no index on `failed_at`, that `OR` read the whole outbox at every code sent (issue 16);
-- given-up mail is rare, so the index holds only those rows.
CREATE INDEX mail_outbox_failed ON mail_outbox (failed_at) WHERE failed_at IS NOT NULL;
