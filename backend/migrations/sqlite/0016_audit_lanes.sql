-- PostgreSQL's audit chain gets lanes here (see its 0016): SQLite writes one transaction at a
-- time, so its chain stays one lane, lane 1, and the column only keeps the two schemas' queries
-- alike.
ALTER TABLE audit_log ADD COLUMN lane BIGINT NOT NULL DEFAULT 1;
