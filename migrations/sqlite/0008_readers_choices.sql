-- Readers' choices, letters planned per reader, and erasure.
-- SQLite changes a CHECK or a key only by building the table anew; the store runs
-- this with foreign keys off and checks every reference afterwards.

-- `frequency`: 'each' or 'digest'; NULL follows the site's `schedule.mode`.
-- `topics`: a JSON array of the tags a reader follows; NULL is every post.
-- `forgotten`: the row of an erased person, with nothing that identifies them,
-- kept so that their deliveries still count.
CREATE TABLE subscribers_new (
    id              INTEGER PRIMARY KEY,
    email           TEXT NOT NULL,
    email_key       TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL CHECK (status IN ('active', 'pending', 'unsubscribed', 'bounced', 'forgotten')),
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    confirmed_at    BIGINT,
    unsubscribed_at BIGINT,
    hard_bounces    INTEGER NOT NULL DEFAULT 0,
    confirm_sent_at BIGINT,
    status_reason   TEXT,
    frequency       TEXT CHECK (frequency IS NULL OR frequency IN ('each', 'digest')),
    topics          TEXT
);
INSERT INTO subscribers_new (id, email, email_key, name, status, created_at, updated_at, confirmed_at,
    unsubscribed_at, hard_bounces, confirm_sent_at, status_reason)
SELECT id, email, email_key, name, status, created_at, updated_at, confirmed_at,
    unsubscribed_at, hard_bounces, confirm_sent_at, status_reason FROM subscribers;
DROP TABLE subscribers;
ALTER TABLE subscribers_new RENAME TO subscribers;
CREATE INDEX subscribers_status ON subscribers (status, id);
CREATE TRIGGER subscriber_growth_update AFTER UPDATE ON subscribers BEGIN
    INSERT INTO subscriber_growth (hour, series, n) SELECT NEW.confirmed_at / 3600000, 'confirmed', 1
        WHERE NEW.confirmed_at IS NOT NULL AND OLD.confirmed_at IS NULL
        ON CONFLICT (hour, series) DO UPDATE SET n = n + 1;
    INSERT INTO subscriber_growth (hour, series, n) SELECT NEW.unsubscribed_at / 3600000, 'unsubscribed', 1
        WHERE NEW.unsubscribed_at IS NOT NULL AND (OLD.unsubscribed_at IS NULL OR OLD.unsubscribed_at <> NEW.unsubscribed_at)
        ON CONFLICT (hour, series) DO UPDATE SET n = n + 1;
    INSERT INTO subscriber_growth (hour, series, n) SELECT NEW.updated_at / 3600000, 'bounced', 1
        WHERE NEW.status = 'bounced' AND OLD.status <> 'bounced'
        ON CONFLICT (hour, series) DO UPDATE SET n = n + 1;
END;

-- A post now reaches readers through several issues (its own for every-essay
-- readers, digests, a welcome), each reader through one of them: "no reader
-- gets a post twice" is kept per reader when deliveries are created. A post
-- still has at most one issue of its own. `frequency`: the readers an issue is
-- for ('each' or 'digest'; NULL for a welcome).
CREATE TABLE issues_new (
    id         INTEGER PRIMARY KEY,
    post_id    BIGINT NOT NULL REFERENCES posts (id),
    subject    TEXT NOT NULL,
    origin     TEXT NOT NULL CHECK (origin IN ('schedule', 'manual')),
    created_at BIGINT NOT NULL,
    kind       TEXT NOT NULL DEFAULT 'post' CHECK (kind IN ('post', 'digest', 'welcome')),
    frequency  TEXT CHECK (frequency IS NULL OR frequency IN ('each', 'digest'))
);
INSERT INTO issues_new (id, post_id, subject, origin, created_at, kind, frequency)
SELECT id, post_id, subject, origin, created_at, kind, 'each' FROM issues;
DROP TABLE issues;
ALTER TABLE issues_new RENAME TO issues;
CREATE UNIQUE INDEX issues_own_post ON issues (post_id) WHERE kind = 'post';
CREATE INDEX issues_post ON issues (post_id, created_at);

CREATE TABLE issue_posts_new (
    issue_id BIGINT NOT NULL REFERENCES issues (id),
    post_id  BIGINT NOT NULL REFERENCES posts (id),
    PRIMARY KEY (issue_id, post_id)
);
INSERT INTO issue_posts_new (issue_id, post_id) SELECT issue_id, post_id FROM issue_posts;
DROP TABLE issue_posts;
ALTER TABLE issue_posts_new RENAME TO issue_posts;
CREATE INDEX issue_posts_post ON issue_posts (post_id, issue_id);

-- When the scheduler (or the author, by hand) first sent a post on its way: a
-- post is planned once, and a reader's digest holds the posts planned since the
-- last digest.
ALTER TABLE posts ADD COLUMN planned_at BIGINT;
UPDATE posts SET planned_at = (SELECT MIN(i.created_at) FROM issue_posts ip JOIN issues i ON i.id = ip.issue_id
    WHERE ip.post_id = posts.id);
CREATE INDEX posts_planned ON posts (planned_at);
