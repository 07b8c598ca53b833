-- What comes back after the relay said 250: bounces, complaints, delays.
-- Deliveries gain the statuses `bounced` and `complained` (SQLite adds a CHECK
-- only by building the table anew; the store runs this with foreign keys off).

CREATE TABLE deliveries_new (
    id              INTEGER PRIMARY KEY,
    issue_id        BIGINT NOT NULL REFERENCES issues (id),
    subscriber_id   BIGINT NOT NULL REFERENCES subscribers (id),
    status          TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'retrying', 'failed', 'skipped', 'bounced', 'complained')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    attempt_base    INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    smtp_reply      TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT,
    sent_at         BIGINT,
    lease_owner     TEXT,
    UNIQUE (issue_id, subscriber_id)
);
INSERT INTO deliveries_new (id, issue_id, subscriber_id, status, attempts, attempt_base, last_error,
    smtp_reply, created_at, updated_at, next_attempt_at, lease_until, sent_at, lease_owner)
SELECT id, issue_id, subscriber_id, status, attempts, attempt_base, last_error,
    smtp_reply, created_at, updated_at, next_attempt_at, lease_until, sent_at, lease_owner
FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_new RENAME TO deliveries;
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_subscriber ON deliveries (subscriber_id, status);

-- Why a subscriber left (a complaint, a bounce), kept with them.
ALTER TABLE subscribers ADD COLUMN status_reason TEXT;

-- Every report that arrived, one row per recipient it names, matched to a
-- delivery or not (delivery_id NULL: kept for the author, never dropped).
CREATE TABLE reports (
    id            INTEGER PRIMARY KEY,
    fingerprint   TEXT NOT NULL UNIQUE,          -- the same report twice counts once
    received_at   BIGINT NOT NULL,
    source        TEXT NOT NULL CHECK (source IN ('mail', 'imap', 'ses', 'postmark', 'mailgun', 'sendgrid')),
    kind          TEXT NOT NULL CHECK (kind IN ('bounce', 'delay', 'complaint', 'delivered')),
    recipient     TEXT,
    status        TEXT,                          -- RFC 3463 code
    hard          INTEGER NOT NULL,
    diagnostic    TEXT,
    feedback_type TEXT,
    delivery_id   BIGINT REFERENCES deliveries (id),
    matched_by    TEXT CHECK (matched_by IS NULL OR matched_by IN ('verp', 'message-id', 'recipient')),
    effect        TEXT NOT NULL CHECK (effect IN ('bounced', 'complained', 'recorded', 'unmatched', 'forged'))
);
CREATE INDEX reports_received ON reports (received_at);
CREATE INDEX reports_delivery ON reports (delivery_id);

-- A delivery's history: every attempt with its reply, and every later report.
CREATE TABLE delivery_events (
    id          INTEGER PRIMARY KEY,
    delivery_id BIGINT NOT NULL REFERENCES deliveries (id),
    at          BIGINT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('attempt', 'bounce', 'delay', 'complaint', 'delivered')),
    outcome     TEXT NOT NULL,                   -- the status it left, or the report's code
    detail      TEXT,                            -- SMTP reply, error or diagnostic
    report_id   BIGINT REFERENCES reports (id)
);
CREATE INDEX delivery_events_delivery ON delivery_events (delivery_id, id);
