-- Readers' choices, letters planned per reader, and erasure.

-- `frequency`: 'each' or 'digest'; NULL follows the site's `schedule.mode`.
-- `topics`: a JSON array of the tags a reader follows; NULL is every post.
-- `forgotten`: the row of an erased person, with nothing that identifies them,
-- kept so that their deliveries still count.
ALTER TABLE subscribers DROP CONSTRAINT subscribers_status_check;
ALTER TABLE subscribers ADD CONSTRAINT subscribers_status
    CHECK (status IN ('active', 'pending', 'unsubscribed', 'bounced', 'forgotten'));
ALTER TABLE subscribers ADD COLUMN frequency TEXT
    CONSTRAINT subscribers_frequency CHECK (frequency IS NULL OR frequency IN ('each', 'digest'));
ALTER TABLE subscribers ADD COLUMN topics TEXT;

-- A post now reaches readers through several issues (its own for every-essay
-- readers, digests, a welcome), each reader through one of them: "no reader
-- gets a post twice" is kept per reader when deliveries are created. A post
-- still has at most one issue of its own. `frequency`: the readers an issue is
-- for ('each' or 'digest'; NULL for a welcome).
ALTER TABLE issues DROP CONSTRAINT issues_post_id_key;
CREATE UNIQUE INDEX issues_own_post ON issues (post_id) WHERE kind = 'post';
CREATE INDEX issues_post ON issues (post_id, created_at);
ALTER TABLE issues DROP CONSTRAINT issues_kind;
ALTER TABLE issues ADD CONSTRAINT issues_kind CHECK (kind IN ('post', 'digest', 'welcome'));
ALTER TABLE issues ADD COLUMN frequency TEXT
    CONSTRAINT issues_frequency CHECK (frequency IS NULL OR frequency IN ('each', 'digest'));
UPDATE issues SET frequency = 'each';

ALTER TABLE issue_posts DROP CONSTRAINT issue_posts_pkey;
ALTER TABLE issue_posts ADD PRIMARY KEY (issue_id, post_id);
DROP INDEX issue_posts_issue;
CREATE INDEX issue_posts_post ON issue_posts (post_id, issue_id);

-- When the scheduler (or the author, by hand) first sent a post on its way: a
-- post is planned once, and a reader's digest holds the posts planned since the
-- last digest.
ALTER TABLE posts ADD COLUMN planned_at BIGINT;
UPDATE posts SET planned_at = (SELECT MIN(i.created_at) FROM issue_posts ip JOIN issues i ON i.id = ip.issue_id
    WHERE ip.post_id = posts.id);
CREATE INDEX posts_planned ON posts (planned_at);
