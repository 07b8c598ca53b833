-- Counts for /metrics, kept as rows change so that reading them never scans
-- the log: deliveries by status, and reports by kind and effect. SQLite has
-- one writer at a time, so the triggers add to the counts in place.
-- (PostgreSQL appends deltas instead; see its 0014.) A later migration that
-- rebuilds `deliveries` or `reports` must create these triggers again.
CREATE TABLE delivery_counts (
    status TEXT PRIMARY KEY,
    n      BIGINT NOT NULL
);
INSERT INTO delivery_counts (status, n) SELECT status, COUNT(*) FROM deliveries GROUP BY status;
CREATE TRIGGER delivery_counts_insert AFTER INSERT ON deliveries BEGIN
    INSERT INTO delivery_counts (status, n) VALUES (NEW.status, 1)
        ON CONFLICT (status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER delivery_counts_update AFTER UPDATE OF status ON deliveries
WHEN OLD.status <> NEW.status BEGIN
    INSERT INTO delivery_counts (status, n) VALUES (OLD.status, -1)
        ON CONFLICT (status) DO UPDATE SET n = n - 1;
    INSERT INTO delivery_counts (status, n) VALUES (NEW.status, 1)
        ON CONFLICT (status) DO UPDATE SET n = n + 1;
END;

CREATE TABLE report_counts (
    kind   TEXT NOT NULL,
    effect TEXT NOT NULL,
    n      BIGINT NOT NULL,
    PRIMARY KEY (kind, effect)
);
INSERT INTO report_counts (kind, effect, n) SELECT kind, effect, COUNT(*) FROM reports GROUP BY kind, effect;
CREATE TRIGGER report_counts_insert AFTER INSERT ON reports BEGIN
    INSERT INTO report_counts (kind, effect, n) VALUES (NEW.kind, NEW.effect, 1)
        ON CONFLICT (kind, effect) DO UPDATE SET n = n + 1;
END;
