-- Which process holds a delivery's lease, so a dead one's claims can be taken back
-- at once instead of when the lease runs out.
ALTER TABLE deliveries ADD COLUMN lease_owner TEXT;

-- The posts of each issue: one for an issue per post, several for a digest. The key
-- on post_id means a post is mailed in one issue at most.
CREATE TABLE issue_posts (
    post_id  BIGINT PRIMARY KEY REFERENCES posts (id),
    issue_id BIGINT NOT NULL REFERENCES issues (id)
);
CREATE INDEX issue_posts_issue ON issue_posts (issue_id);
INSERT INTO issue_posts (post_id, issue_id) SELECT post_id, id FROM issues;

-- 'post' or 'digest'. issues.post_id stays: the post that names the issue (for a
-- digest, its newest post).
ALTER TABLE issues ADD COLUMN kind TEXT NOT NULL DEFAULT 'post';
