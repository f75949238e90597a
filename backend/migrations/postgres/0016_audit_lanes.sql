-- The audit chain gets sixteen lanes on PostgreSQL (issue 16). With one chain through one head
-- row, every writing route's commit queued on that row's lock, held through the commit's WAL
-- flush: sign-in at 500/s spent most of its time asleep on it. Each lane is a chain of its own
-- with its own sealed head; a transaction chains its entries onto a lane no one else holds, so
-- up to sixteen commits proceed (and flush) together. `audit_head.id` is the lane's number;
-- lane 1 is the chain as it was, and the backend seals the others, with an audited entry on lane
-- 1, at its first start after this migration (`audit::open_lanes`).
ALTER TABLE audit_head DROP CONSTRAINT audit_head_id_check;
ALTER TABLE audit_head ADD CONSTRAINT audit_head_lane CHECK (id BETWEEN 1 AND 16);
-- Each new lane starts from its own value (its number, as 32 bytes), not lane 1's zeros: two
-- lanes' first rows with the same fields would otherwise have the same hash.
INSERT INTO audit_head (id, hash) SELECT n, decode(lpad(to_hex(n), 64, '0'), 'hex') FROM generate_series(2, 16) AS n;

ALTER TABLE audit_log ADD COLUMN lane BIGINT NOT NULL DEFAULT 1;

-- The day counters are kept per lane too, or their rows would be the next lock every commit
-- queues on; a report adds the lanes up.
ALTER TABLE audit_daily ADD COLUMN lane BIGINT NOT NULL DEFAULT 1;
ALTER TABLE audit_daily DROP CONSTRAINT audit_daily_pkey;
ALTER TABLE audit_daily ADD PRIMARY KEY (day, event, lane);

CREATE OR REPLACE FUNCTION audit_daily_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_daily (day, event, lane, n)
    SELECT at / 86400, event, lane, COUNT(*) FROM added GROUP BY at / 86400, event, lane
    ORDER BY 1, 2, 3
    ON CONFLICT (day, event, lane) DO UPDATE SET n = audit_daily.n + EXCLUDED.n;
    RETURN NULL;
END
$$;
