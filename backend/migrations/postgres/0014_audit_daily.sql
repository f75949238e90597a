-- The RA report counts events per UTC day (issue 16): over a year of a million people's activity
-- that was a GROUP BY over about a million audit rows per report, seconds each. The counts are
-- kept as the rows arrive instead, by a trigger, so every way a row gets in (the API, a bulk
-- load in SQL) is counted the same; appends are queued on `audit_head` already, so the counters'
-- row locks add no waiting of their own.
CREATE TABLE audit_daily (
    day    BIGINT NOT NULL,   -- days since the epoch (UTC), at / 86400
    event  TEXT   NOT NULL,
    n      BIGINT NOT NULL,
    PRIMARY KEY (day, event)
);

INSERT INTO audit_daily (day, event, n)
SELECT at / 86400, event, COUNT(*) FROM audit_log GROUP BY at / 86400, event;

-- Once per statement over the rows it added, so a bulk load of a million rows costs one grouped
-- upsert, not a million.
CREATE FUNCTION audit_daily_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_daily (day, event, n)
    SELECT at / 86400, event, COUNT(*) FROM added GROUP BY at / 86400, event
    ORDER BY 1, 2
    ON CONFLICT (day, event) DO UPDATE SET n = audit_daily.n + EXCLUDED.n;
    RETURN NULL;
END
$$;

CREATE TRIGGER audit_daily_count AFTER INSERT ON audit_log
REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION audit_daily_count();
