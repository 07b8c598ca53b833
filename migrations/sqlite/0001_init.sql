-- Times are milliseconds since the Unix epoch (UTC), the same on both engines.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE posts (
    id            INTEGER PRIMARY KEY,
    uid           TEXT NOT NULL UNIQUE,      -- stable identity: feed ids, Message-IDs
    slug          TEXT NOT NULL UNIQUE,
    source        TEXT NOT NULL,             -- file below posts/, or the upstream entry key
    title         TEXT NOT NULL,
    summary       TEXT NOT NULL,
    content_html  TEXT NOT NULL,
    tags          TEXT NOT NULL,             -- JSON array of strings
    published_at  BIGINT NOT NULL,
    updated_at    BIGINT,
    draft         INTEGER NOT NULL,
    email         INTEGER NOT NULL,
    external_url  TEXT,                      -- upstream posts: the entry's own link
    content_hash  TEXT NOT NULL,
    announce      INTEGER NOT NULL,          -- 0: predates the database, feeds only
    first_seen_at BIGINT NOT NULL,
    synced_at     BIGINT NOT NULL,
    removed_at    BIGINT                     -- its file is gone; hidden, never deleted
);
CREATE INDEX posts_source ON posts (source);
CREATE INDEX posts_published ON posts (published_at);

CREATE TABLE subscribers (
    id              INTEGER PRIMARY KEY,
    email           TEXT NOT NULL,
    email_key       TEXT NOT NULL UNIQUE,    -- lower-cased: one address, one subscriber
    name            TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL CHECK (status IN ('active', 'pending', 'unsubscribed', 'bounced')),
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    confirmed_at    BIGINT,
    unsubscribed_at BIGINT,
    hard_bounces    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX subscribers_status ON subscribers (status, id);

CREATE TABLE issues (
    id         INTEGER PRIMARY KEY,
    post_id    BIGINT NOT NULL UNIQUE REFERENCES posts (id),
    subject    TEXT NOT NULL,
    origin     TEXT NOT NULL,                -- 'schedule' or 'manual'
    created_at BIGINT NOT NULL
);

CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY,
    issue_id        BIGINT NOT NULL REFERENCES issues (id),
    subscriber_id   BIGINT NOT NULL REFERENCES subscribers (id),
    status          TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'retrying', 'failed', 'skipped')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    attempt_base    INTEGER NOT NULL DEFAULT 0,      -- attempts made before the last manual retry
    last_error      TEXT,
    smtp_reply      TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT,
    sent_at         BIGINT,
    UNIQUE (issue_id, subscriber_id)
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_subscriber ON deliveries (subscriber_id, status);
