-- The database refuses what the code would refuse to read: every enum column has
-- a CHECK with exactly the values of its Rust enum. SQLite adds a CHECK only by
-- building the table anew (its documented twelve steps): the store runs the
-- migrations with foreign keys off and checks every reference afterwards.

CREATE TABLE posts_new (
    id            INTEGER PRIMARY KEY,
    uid           TEXT NOT NULL UNIQUE,
    slug          TEXT NOT NULL UNIQUE,
    source        TEXT NOT NULL CHECK (source LIKE 'file:%' OR source LIKE 'feed:%'),
    title         TEXT NOT NULL,
    summary       TEXT NOT NULL,
    content_html  TEXT NOT NULL,
    tags          TEXT NOT NULL,
    published_at  BIGINT NOT NULL,
    updated_at    BIGINT,
    draft         INTEGER NOT NULL,
    email         INTEGER NOT NULL,
    external_url  TEXT,
    content_hash  TEXT NOT NULL,
    announce      INTEGER NOT NULL,
    first_seen_at BIGINT NOT NULL,
    synced_at     BIGINT NOT NULL,
    removed_at    BIGINT
);
INSERT INTO posts_new (id, uid, slug, source, title, summary, content_html, tags, published_at,
    updated_at, draft, email, external_url, content_hash, announce, first_seen_at, synced_at, removed_at)
SELECT id, uid, slug, source, title, summary, content_html, tags, published_at,
    updated_at, draft, email, external_url, content_hash, announce, first_seen_at, synced_at, removed_at
FROM posts;
DROP TABLE posts;
ALTER TABLE posts_new RENAME TO posts;
CREATE INDEX posts_source ON posts (source);
CREATE INDEX posts_published ON posts (published_at);

CREATE TABLE issues_new (
    id         INTEGER PRIMARY KEY,
    post_id    BIGINT NOT NULL UNIQUE REFERENCES posts (id),
    subject    TEXT NOT NULL,
    origin     TEXT NOT NULL CHECK (origin IN ('schedule', 'manual')),
    created_at BIGINT NOT NULL,
    kind       TEXT NOT NULL DEFAULT 'post' CHECK (kind IN ('post', 'digest'))
);
INSERT INTO issues_new (id, post_id, subject, origin, created_at, kind)
SELECT id, post_id, subject, origin, created_at, kind FROM issues;
DROP TABLE issues;
ALTER TABLE issues_new RENAME TO issues;

CREATE TABLE sources_new (
    id               INTEGER PRIMARY KEY,
    url              TEXT NOT NULL UNIQUE,
    fetch_url        TEXT NOT NULL,
    etag             TEXT,
    last_modified    TEXT,
    first_fetched_at BIGINT,
    last_fetch_at    BIGINT,
    last_status      TEXT CHECK (last_status IS NULL OR last_status IN ('200 OK', '304 Not Modified', 'error')),
    last_error       TEXT,
    created_at       BIGINT NOT NULL
);
INSERT INTO sources_new (id, url, fetch_url, etag, last_modified, first_fetched_at, last_fetch_at,
    last_status, last_error, created_at)
SELECT id, url, fetch_url, etag, last_modified, first_fetched_at, last_fetch_at,
    last_status, last_error, created_at FROM sources;
DROP TABLE sources;
ALTER TABLE sources_new RENAME TO sources;
