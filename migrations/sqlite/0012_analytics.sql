-- What happened after a send, counted without recording anyone. No table here
-- names a subscriber, a delivery or an address: a click, an open or a view
-- adds to a count, and "different emails" are HyperLogLog sketches over a
-- random tag drawn per email and kept nowhere else.

-- Per issue: clicks on any counted link, and opens of the pixel. A machine's
-- open (a privacy proxy, a security scanner, one within seconds of the send)
-- is counted apart and never as a read.
CREATE TABLE issue_counts (
    issue_id      BIGINT PRIMARY KEY REFERENCES issues (id),
    clicks        BIGINT NOT NULL DEFAULT 0,
    clickers      BLOB,                       -- sketch: different emails that clicked
    opens         BIGINT NOT NULL DEFAULT 0,
    openers       BLOB,                       -- sketch: different emails opened by a person
    machine_opens BIGINT NOT NULL DEFAULT 0
);

-- Per issue and link. A link is keyed by the SHA-256 of its URL (hex): a
-- URL may be longer than an index entry may be.
CREATE TABLE link_counts (
    issue_id BIGINT NOT NULL REFERENCES issues (id),
    url_key  TEXT NOT NULL,
    url      TEXT NOT NULL,
    clicks   BIGINT NOT NULL DEFAULT 0,
    clickers BLOB,
    PRIMARY KEY (issue_id, url_key)
);

-- Archive page views per post and day (the site's own calendar).
CREATE TABLE post_views (
    post_id BIGINT NOT NULL REFERENCES posts (id),
    day     TEXT NOT NULL,                  -- YYYY-MM-DD
    views   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (post_id, day)
);

-- The readers a feed service says it has, as it last said it.
CREATE TABLE feed_followers (
    feed      TEXT NOT NULL,                -- feed.xml, atom.xml or feed.json
    service   TEXT NOT NULL,
    followers BIGINT NOT NULL,
    seen_at   BIGINT NOT NULL,
    PRIMARY KEY (feed, service)
);
