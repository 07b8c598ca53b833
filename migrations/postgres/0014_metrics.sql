-- Counts for /metrics, kept as rows change so that reading them never scans
-- the log: deliveries by status, and reports by kind and effect. Counted per
-- statement over the transition tables. A count is spread over 8 rows by the
-- connection (the sum is the count), so that workers recording at once do not
-- all wait on one row; rows are taken in one order, so they cannot deadlock.
CREATE TABLE delivery_counts (
    status TEXT NOT NULL,
    shard  INTEGER NOT NULL,
    n      BIGINT NOT NULL,
    PRIMARY KEY (status, shard)
);
INSERT INTO delivery_counts (status, shard, n) SELECT status, 0, COUNT(*) FROM deliveries GROUP BY status;

CREATE FUNCTION delivery_counts_inserted() RETURNS trigger AS $$
BEGIN
    INSERT INTO delivery_counts (status, shard, n)
        SELECT status, pg_backend_pid() % 8, COUNT(*) FROM new_rows GROUP BY status ORDER BY status
    ON CONFLICT (status, shard) DO UPDATE SET n = delivery_counts.n + EXCLUDED.n;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER delivery_counts_insert AFTER INSERT ON deliveries
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION delivery_counts_inserted();

CREATE FUNCTION delivery_counts_updated() RETURNS trigger AS $$
BEGIN
    INSERT INTO delivery_counts (status, shard, n)
        SELECT status, pg_backend_pid() % 8, SUM(d) FROM (
            SELECT o.status, -1 AS d FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE o.status <> n.status
            UNION ALL
            SELECT n.status, 1 AS d FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE o.status <> n.status
        ) AS changed GROUP BY status ORDER BY status
    ON CONFLICT (status, shard) DO UPDATE SET n = delivery_counts.n + EXCLUDED.n;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER delivery_counts_update AFTER UPDATE ON deliveries
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION delivery_counts_updated();

CREATE TABLE report_counts (
    kind   TEXT NOT NULL,
    effect TEXT NOT NULL,
    n      BIGINT NOT NULL,
    PRIMARY KEY (kind, effect)
);
INSERT INTO report_counts (kind, effect, n) SELECT kind, effect, COUNT(*) FROM reports GROUP BY kind, effect;

CREATE FUNCTION report_counts_inserted() RETURNS trigger AS $$
BEGIN
    INSERT INTO report_counts (kind, effect, n)
        SELECT kind, effect, COUNT(*) FROM new_rows GROUP BY kind, effect ORDER BY kind, effect
    ON CONFLICT (kind, effect) DO UPDATE SET n = report_counts.n + EXCLUDED.n;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER report_counts_insert AFTER INSERT ON reports
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION report_counts_inserted();
