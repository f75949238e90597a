-- The RA report counts events per UTC day (issue 16): kept as the rows arrive, by a trigger, so
-- a report reads a row per day and event instead of grouping the whole trail, and every way a
-- row gets in is counted the same. Appends hold SQLite's write lock already.
CREATE TABLE audit_daily (
    day    BIGINT NOT NULL,   -- days since the epoch (UTC), at / 86400
    event  TEXT   NOT NULL,
    n      BIGINT NOT NULL,
    PRIMARY KEY (day, event)
);

INSERT INTO audit_daily (day, event, n)
SELECT at / 86400, event, COUNT(*) FROM audit_log GROUP BY at / 86400, event;

CREATE TRIGGER audit_daily_count AFTER INSERT ON audit_log
BEGIN
    INSERT INTO audit_daily (day, event, n) VALUES (NEW.at / 86400, NEW.event, 1)
    ON CONFLICT (day, event) DO UPDATE SET n = n + 1;
END;
