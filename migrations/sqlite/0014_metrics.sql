-- Counts for /metrics, kept as rows change so that reading them never scans
-- the log: deliveries by status, and reports by kind and effect. A count is
-- spread over 8 rows by delivery id (the sum is the count), so that workers
-- recording at once do not all wait on one row.
CREATE TABLE delivery_counts (
    status TEXT NOT NULL,
    shard  INTEGER NOT NULL,
    n      BIGINT NOT NULL,
    PRIMARY KEY (status, shard)
);
INSERT INTO delivery_counts (status, shard, n) SELECT status, 0, COUNT(*) FROM deliveries GROUP BY status;
CREATE TRIGGER delivery_counts_insert AFTER INSERT ON deliveries BEGIN
    INSERT INTO delivery_counts (status, shard, n) VALUES (NEW.status, NEW.id % 8, 1)
        ON CONFLICT (status, shard) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER delivery_counts_update AFTER UPDATE OF status ON deliveries
WHEN OLD.status <> NEW.status BEGIN
    INSERT INTO delivery_counts (status, shard, n) VALUES (OLD.status, OLD.id % 8, -1)
        ON CONFLICT (status, shard) DO UPDATE SET n = n - 1;
    INSERT INTO delivery_counts (status, shard, n) VALUES (NEW.status, NEW.id % 8, 1)
        ON CONFLICT (status, shard) DO UPDATE SET n = n + 1;
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
