-- Counts for /metrics, kept as rows change so that reading them never scans
-- the log: deliveries by status, and reports by kind and effect.
--
-- Triggers only append deltas (one row per status a statement changed),
-- which takes no lock another transaction waits on: a counter row updated in
-- place would be held until commit by every claim, record and skip, and two
-- transactions taking such rows in different orders deadlock. The deltas are
-- folded into the counts by one statement (each tick and each read), which
-- takes the count rows in one order.
LOCK TABLE deliveries, reports IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE delivery_counts (
    status TEXT PRIMARY KEY,
    n      BIGINT NOT NULL
);
CREATE TABLE delivery_count_deltas (
    status TEXT NOT NULL,
    d      BIGINT NOT NULL
);
INSERT INTO delivery_counts (status, n) SELECT status, COUNT(*) FROM deliveries GROUP BY status;

CREATE FUNCTION delivery_counts_inserted() RETURNS trigger AS $$
BEGIN
    INSERT INTO delivery_count_deltas (status, d) SELECT status, COUNT(*) FROM new_rows GROUP BY status;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER delivery_counts_insert AFTER INSERT ON deliveries
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION delivery_counts_inserted();

CREATE FUNCTION delivery_counts_updated() RETURNS trigger AS $$
BEGIN
    INSERT INTO delivery_count_deltas (status, d)
        SELECT status, SUM(d) FROM (
            SELECT o.status, -1 AS d FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE o.status <> n.status
            UNION ALL
            SELECT n.status, 1 AS d FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE o.status <> n.status
        ) AS changed GROUP BY status;
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
CREATE TABLE report_count_deltas (
    kind   TEXT NOT NULL,
    effect TEXT NOT NULL,
    d      BIGINT NOT NULL
);
INSERT INTO report_counts (kind, effect, n) SELECT kind, effect, COUNT(*) FROM reports GROUP BY kind, effect;

CREATE FUNCTION report_counts_inserted() RETURNS trigger AS $$
BEGIN
    INSERT INTO report_count_deltas (kind, effect, d) SELECT kind, effect, COUNT(*) FROM new_rows GROUP BY kind, effect;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER report_counts_insert AFTER INSERT ON reports
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION report_counts_inserted();
