-- The author's dashboard: sessions, and the indexes that keep its pages fast.

-- A signed-in browser. `id` is the SHA-256 of the cookie's value: a copy of
-- the database does not hand out sessions.
CREATE TABLE admin_sessions (
    id           TEXT PRIMARY KEY,
    csrf         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);

-- Counts by status per issue, and one status of one issue in id order (the
-- log's keyset pages), read from the index alone.
CREATE INDEX deliveries_issue_status ON deliveries (issue_id, status, id);
CREATE INDEX deliveries_issue ON deliveries (issue_id, id);

-- Growth, kept exact as it happens: one row per hour and event (a subscriber
-- added, confirmed, unsubscribed or bounced), counted in the same transaction
-- as the change. The overview sums 90 days of it instead of
-- scanning every subscriber.
CREATE TABLE subscriber_growth (
    hour   BIGINT NOT NULL,           -- milliseconds since the epoch / 3,600,000
    series TEXT NOT NULL CHECK (series IN ('new', 'confirmed', 'unsubscribed', 'bounced')),
    n      BIGINT NOT NULL,
    PRIMARY KEY (hour, series)
);
INSERT INTO subscriber_growth (hour, series, n)
    SELECT created_at / 3600000, 'new', COUNT(*) FROM subscribers GROUP BY created_at / 3600000;
INSERT INTO subscriber_growth (hour, series, n)
    SELECT confirmed_at / 3600000, 'confirmed', COUNT(*) FROM subscribers
    WHERE confirmed_at IS NOT NULL GROUP BY confirmed_at / 3600000;
INSERT INTO subscriber_growth (hour, series, n)
    SELECT unsubscribed_at / 3600000, 'unsubscribed', COUNT(*) FROM subscribers
    WHERE unsubscribed_at IS NOT NULL GROUP BY unsubscribed_at / 3600000;
INSERT INTO subscriber_growth (hour, series, n)
    SELECT updated_at / 3600000, 'bounced', COUNT(*) FROM subscribers
    WHERE status = 'bounced' GROUP BY updated_at / 3600000;

-- New subscribers are counted by the store, once per batch it inserts; changes
-- are counted here, per statement over the transition tables (a bulk change
-- adds a few counts, not one call per row).
CREATE FUNCTION subscriber_growth_updated() RETURNS trigger AS $$
BEGIN
    INSERT INTO subscriber_growth (hour, series, n)
        SELECT n.confirmed_at / 3600000, 'confirmed', COUNT(*) FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE n.confirmed_at IS NOT NULL AND o.confirmed_at IS NULL GROUP BY 1
        UNION ALL
        SELECT n.unsubscribed_at / 3600000, 'unsubscribed', COUNT(*) FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE n.unsubscribed_at IS NOT NULL AND n.unsubscribed_at IS DISTINCT FROM o.unsubscribed_at GROUP BY 1
        UNION ALL
        SELECT n.updated_at / 3600000, 'bounced', COUNT(*) FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE n.status = 'bounced' AND o.status <> 'bounced' GROUP BY 1
    ON CONFLICT (hour, series) DO UPDATE SET n = subscriber_growth.n + EXCLUDED.n;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER subscriber_growth_update AFTER UPDATE ON subscribers
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION subscriber_growth_updated();
