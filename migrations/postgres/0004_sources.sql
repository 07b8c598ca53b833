-- Upstream feeds an author's posts come from ([posts] feed).
CREATE TABLE sources (
    id               BIGSERIAL PRIMARY KEY,
    url              TEXT NOT NULL UNIQUE,   -- as configured
    fetch_url        TEXT NOT NULL,          -- after permanent redirects
    etag             TEXT,
    last_modified    TEXT,
    first_fetched_at BIGINT,                 -- the entries seen then are archive
    last_fetch_at    BIGINT,
    last_status      TEXT,
    last_error       TEXT,
    created_at       BIGINT NOT NULL
);

-- Every entry key ever seen, kept forever (not only while it is in the feed): a
-- guid/id, else the link, else a hash of title and date. Several keys may point to
-- one post (a guid that changed while the link stayed).
CREATE TABLE source_entries (
    id            BIGSERIAL PRIMARY KEY,
    source_id     BIGINT NOT NULL REFERENCES sources (id),
    entry_key     TEXT NOT NULL,
    link          TEXT,
    post_id       BIGINT NOT NULL REFERENCES posts (id),
    first_seen_at BIGINT NOT NULL,
    UNIQUE (source_id, entry_key)
);
CREATE INDEX source_entries_link ON source_entries (source_id, link);
