-- What comes back after the relay said 250: bounces, complaints, delays.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_status CHECK (status IN
    ('queued', 'sending', 'sent', 'retrying', 'failed', 'skipped', 'bounced', 'complained'));

-- Why a subscriber left (a complaint, a bounce), kept with them.
ALTER TABLE subscribers ADD COLUMN status_reason TEXT;

-- Every report that arrived, one row per recipient it names, matched to a
-- delivery or not (delivery_id NULL: kept for the author, never dropped).
CREATE TABLE reports (
    id            BIGSERIAL PRIMARY KEY,
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
    id          BIGSERIAL PRIMARY KEY,
    delivery_id BIGINT NOT NULL REFERENCES deliveries (id),
    at          BIGINT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('attempt', 'bounce', 'delay', 'complaint', 'delivered')),
    outcome     TEXT NOT NULL,                   -- the status it left, or the report's code
    detail      TEXT,                            -- SMTP reply, error or diagnostic
    report_id   BIGINT REFERENCES reports (id)
);
CREATE INDEX delivery_events_delivery ON delivery_events (delivery_id, id);
