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

-- Growth over the last 90 days: ranges on each date.
CREATE INDEX subscribers_created ON subscribers (created_at);
CREATE INDEX subscribers_confirmed ON subscribers (confirmed_at);
CREATE INDEX subscribers_unsubscribed ON subscribers (unsubscribed_at);
