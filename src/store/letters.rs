//! Planning letters: which readers get which posts in which issue.
//!
//! Everything here runs in one transaction that holds the `issues` lock, so two
//! processes never plan the same post twice, and a reader is given a post only
//! when no delivery of it (other than a skipped one) exists for them: no reader
//! gets a post twice, whether it reaches them alone, in a digest or in a welcome.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::issues::{issue_from_row, IssueQueued, ISSUE_COLUMNS};
use super::posts::{post_from_row, POST_COLUMNS};
use super::{id_list, lock, ms, placeholders, read_meta, time_of_meta, write_meta, Dialect, Store};
use crate::domain::{Frequency, IssueKind, IssueOrigin, Post, Preferences};
use crate::error::{DbContext, Error};

/// A post as planning sees it: its id and its tags that are site topics.
#[derive(Debug, Clone)]
pub struct PlanPost {
    pub id: i64,
    pub topics: Vec<String>,
}

/// Whom a plan is for.
#[derive(Debug, Clone, Copy)]
pub enum Readers {
    /// Active readers whose frequency (theirs, or the site's `default`) is this.
    Frequency {
        frequency: Frequency,
        default: Frequency,
    },
    /// One active reader, whatever they chose.
    One(i64),
}

/// One letter: the same posts for every reader in it. Readers come as whole
/// groups (everyone of the audience who follows the same topics, less those
/// who had one of the posts) written by one statement each, and one by one
/// (those who had some of the posts already, and a single reader's letter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Letter {
    /// Oldest first, as given.
    pub posts: Vec<i64>,
    /// How many readers get it.
    pub count: usize,
    audience: Option<(Frequency, Frequency)>,
    /// Stored `topics` values (`''` for every post) whose readers get it.
    groups: Vec<String>,
    ids: Vec<i64>,
}

impl Letter {
    /// A letter of `post` for nobody (yet): the post's own issue, made anyway.
    pub fn empty(post: i64) -> Letter {
        Letter {
            posts: vec![post],
            count: 0,
            audience: None,
            groups: Vec::new(),
            ids: Vec::new(),
        }
    }
}

/// The issue a letter is written into.
#[derive(Debug, Clone)]
pub struct LetterIssue<'a> {
    pub kind: IssueKind,
    pub origin: IssueOrigin,
    /// The readers it is for; `None` for a welcome.
    pub frequency: Option<Frequency>,
    pub subject: &'a str,
}

/// A planning transaction: see the module's notes. Dropped without
/// [`Planning::commit`], nothing happens.
pub struct Planning {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    dialect: Dialect,
    /// Readers per stored topics value, per audience: planning adds deliveries,
    /// never readers, so one count serves every post of a tick.
    groups: HashMap<(Frequency, Frequency), Vec<(String, usize)>>,
}

impl Store {
    /// Starts planning: takes the `issues` lock until commit.
    pub async fn planning(&self) -> Result<Planning, Error> {
        let mut tx = self.pool.begin().await.db("planning letters")?;
        lock(&mut tx, "issues").await?;
        Ok(Planning {
            tx,
            dialect: self.dialect,
            groups: HashMap::new(),
        })
    }

    /// Planning to count only (who would get what): no lock, so a page that asks
    /// never waits for a send; dropped, it writes nothing.
    pub async fn counting(&self) -> Result<Planning, Error> {
        let tx = self.pool.begin().await.db("counting letters")?;
        Ok(Planning {
            tx,
            dialect: self.dialect,
            groups: HashMap::new(),
        })
    }
}

impl Planning {
    pub async fn commit(self) -> Result<(), Error> {
        self.tx.commit().await.db("committing the planned letters")
    }

    /// Published posts to mail that were never planned, oldest first.
    pub async fn unplanned_posts(&mut self, now: DateTime<Utc>) -> Result<Vec<Post>, Error> {
        let sql = format!(
            "SELECT {POST_COLUMNS} FROM posts WHERE planned_at IS NULL AND announce = 1 AND draft = 0 \
             AND email = 1 AND removed_at IS NULL AND published_at <= $1 ORDER BY published_at, id"
        );
        self.posts(sqlx::query(&sql).bind(ms(now))).await
    }

    /// Posts planned after `after` (and by `until`, if given) that are still to
    /// mail, oldest first: what a digest at `until` holds.
    pub async fn planned_between(
        &mut self,
        after: DateTime<Utc>,
        until: Option<DateTime<Utc>>,
    ) -> Result<Vec<Post>, Error> {
        let sql = format!(
            "SELECT {POST_COLUMNS} FROM posts WHERE planned_at > $1 AND planned_at <= $2 AND draft = 0 \
             AND email = 1 AND removed_at IS NULL ORDER BY published_at, id"
        );
        let until = until.map_or(i64::MAX, ms);
        self.posts(sqlx::query(&sql).bind(ms(after)).bind(until))
            .await
    }

    /// The newest published posts to mail, newest first (a welcome's candidates).
    pub async fn newest_posts(&mut self, now: DateTime<Utc>, n: i64) -> Result<Vec<Post>, Error> {
        let sql = format!(
            "SELECT {POST_COLUMNS} FROM posts WHERE draft = 0 AND email = 1 AND removed_at IS NULL \
             AND published_at <= $1 ORDER BY published_at DESC, id DESC LIMIT $2"
        );
        self.posts(sqlx::query(&sql).bind(ms(now)).bind(n)).await
    }

    /// Posts by id that are still to mail, oldest first.
    pub async fn posts_by_id(&mut self, ids: &[i64]) -> Result<Vec<Post>, Error> {
        let sql = format!(
            "SELECT {POST_COLUMNS} FROM posts WHERE draft = 0 AND email = 1 \
             AND removed_at IS NULL AND id IN ({})",
            self.dialect.ids(1)
        );
        let query = sqlx::query(&sql).bind(id_list(ids));
        let mut out = self.posts(query).await?;
        out.sort_by_key(|p| (p.published_at, p.id));
        Ok(out)
    }

    async fn posts<'q>(
        &mut self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<Vec<Post>, Error> {
        query
            .fetch_all(&mut *self.tx)
            .await
            .db("reading posts to plan")?
            .iter()
            .map(post_from_row)
            .collect::<Result<_, _>>()
            .db("decoding posts")
    }

    /// Marks posts planned at `now`, once: a post planned before keeps its time.
    pub async fn mark_planned(
        &mut self,
        post_ids: &[i64],
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let sql = format!(
            "UPDATE posts SET planned_at = $1 WHERE planned_at IS NULL AND id IN ({})",
            self.dialect.ids(2)
        );
        sqlx::query(&sql)
            .bind(ms(now))
            .bind(id_list(post_ids))
            .execute(&mut *self.tx)
            .await
            .db("marking posts planned")?;
        Ok(())
    }

    /// A value of the planning state, kept in `meta`.
    pub async fn meta(&mut self, key: &str) -> Result<Option<String>, Error> {
        read_meta(&mut *self.tx, key).await
    }

    pub async fn set_meta(&mut self, key: &str, value: &str) -> Result<(), Error> {
        write_meta(&mut *self.tx, key, value).await
    }

    /// A time of the planning state (milliseconds, as every column keeps time);
    /// an unreadable one reads as missing.
    pub async fn meta_time(&mut self, key: &str) -> Result<Option<DateTime<Utc>>, Error> {
        Ok(time_of_meta(self.meta(key).await?))
    }

    pub async fn set_meta_time(&mut self, key: &str, t: DateTime<Utc>) -> Result<(), Error> {
        self.set_meta(key, &ms(t).to_string()).await
    }

    /// Who gets which of `posts`: each reader gets the posts their topics want and
    /// that they have not had, and readers with the same posts share a letter.
    /// Letters come in a stable order; readers with nothing to get are in none.
    /// Memory grows with the number of distinct topic choices and of readers who
    /// had some of the posts, not with the audience.
    pub async fn letters(
        &mut self,
        posts: &[PlanPost],
        readers: Readers,
    ) -> Result<Vec<Letter>, Error> {
        if posts.is_empty() {
            return Ok(Vec::new());
        }
        let wanted_by = |topics: &str| -> Vec<i64> {
            let prefs = Preferences {
                frequency: None,
                topics: Preferences::parse_topics((!topics.is_empty()).then_some(topics)),
            };
            posts
                .iter()
                .filter(|p| prefs.wants(&p.topics))
                .map(|p| p.id)
                .collect()
        };
        let (audience, groups) = match readers {
            Readers::Frequency { frequency, default } => (
                Some((frequency, default)),
                self.groups(frequency, default).await?,
            ),
            Readers::One(_) => (None, Vec::new()),
        };
        // Readers of the audience who had some of the posts: each is planned alone.
        let had = self.had(posts, readers).await?;
        let mut had_by_group: HashMap<&str, usize> = HashMap::new();
        for (topics, _) in had.values() {
            *had_by_group.entry(topics.as_str()).or_default() += 1;
        }
        let mut out: BTreeMap<Vec<i64>, Letter> = BTreeMap::new();
        for (topics, n) in &groups {
            let key = wanted_by(topics);
            let rest = n - had_by_group.get(topics.as_str()).copied().unwrap_or(0);
            if key.is_empty() || rest == 0 {
                continue;
            }
            let letter = entry(&mut out, key, audience);
            letter.groups.push(topics.clone());
            letter.count += rest;
        }
        for (reader, (topics, got)) in &had {
            let key: Vec<i64> = wanted_by(topics)
                .into_iter()
                .filter(|p| !got.contains(p))
                .collect();
            if key.is_empty() {
                continue;
            }
            let letter = entry(&mut out, key, audience);
            letter.ids.push(*reader);
            letter.count += 1;
        }
        if let Readers::One(id) = readers {
            if !had.contains_key(&id) {
                let topics: Option<Option<String>> = sqlx::query_scalar(
                    "SELECT topics FROM subscribers WHERE status = 'active' AND id = $1",
                )
                .bind(id)
                .fetch_optional(&mut *self.tx)
                .await
                .db("reading a reader")?;
                if let Some(topics) = topics {
                    let key = wanted_by(topics.as_deref().unwrap_or(""));
                    if !key.is_empty() {
                        let letter = entry(&mut out, key, audience);
                        letter.ids.push(id);
                        letter.count += 1;
                    }
                }
            }
        }
        Ok(out.into_values().collect())
    }

    /// How many active readers of this audience follow each stored topics value.
    async fn groups(
        &mut self,
        frequency: Frequency,
        default: Frequency,
    ) -> Result<Vec<(String, usize)>, Error> {
        if let Some(groups) = self.groups.get(&(frequency, default)) {
            return Ok(groups.clone());
        }
        let rows = sqlx::query(
            "SELECT COALESCE(topics, '') AS t, COUNT(*) AS n FROM subscribers \
             WHERE status = 'active' AND COALESCE(frequency, $1) = $2 GROUP BY COALESCE(topics, '')",
        )
        .bind(default.as_str())
        .bind(frequency.as_str())
        .fetch_all(&mut *self.tx)
        .await
        .db("counting the readers to plan for")?;
        let mut groups = Vec::with_capacity(rows.len());
        for row in rows {
            let topics: String = row.try_get("t").db("counting readers")?;
            let n: i64 = row.try_get("n").db("counting readers")?;
            groups.push((topics, n as usize));
        }
        self.groups.insert((frequency, default), groups.clone());
        Ok(groups)
    }

    /// The readers of the audience who have (or are getting) some of `posts`, with
    /// their stored topics and which of the posts they have.
    async fn had(
        &mut self,
        posts: &[PlanPost],
        readers: Readers,
    ) -> Result<HashMap<i64, (String, Vec<i64>)>, Error> {
        let ids: Vec<i64> = posts.iter().map(|p| p.id).collect();
        let (audience, first) = match readers {
            Readers::Frequency { .. } => ("COALESCE(s.frequency, $1) = $2", 3),
            Readers::One(_) => ("s.id = $1", 2),
        };
        let mut had: HashMap<i64, (String, Vec<i64>)> = HashMap::new();
        {
            let sql = format!(
                "SELECT d.subscriber_id, ip.post_id, COALESCE(s.topics, '') AS t FROM issue_posts ip \
                 JOIN deliveries d ON d.issue_id = ip.issue_id JOIN subscribers s ON s.id = d.subscriber_id \
                 WHERE ip.post_id IN ({}) AND d.status <> 'skipped' AND s.status = 'active' AND {audience}",
                self.dialect.ids(first)
            );
            let query = match readers {
                Readers::Frequency { frequency, default } => sqlx::query(&sql)
                    .bind(default.as_str())
                    .bind(frequency.as_str()),
                Readers::One(id) => sqlx::query(&sql).bind(id),
            };
            let rows = query
                .bind(id_list(&ids))
                .fetch_all(&mut *self.tx)
                .await
                .db("reading who has which post")?;
            for row in rows {
                let ctx = "reading who has which post";
                let reader: i64 = row.try_get(0).db(ctx)?;
                let post: i64 = row.try_get(1).db(ctx)?;
                let topics: String = row.try_get(2).db(ctx)?;
                had.entry(reader)
                    .or_insert_with(|| (topics, Vec::new()))
                    .1
                    .push(post);
            }
        }
        Ok(had)
    }

    /// Writes `letter` into an issue and queues one delivery per reader in it. A
    /// post's own issue (kind `post`) and a welcome are made once per post and
    /// added to; every digest is an issue of its own.
    pub async fn write(
        &mut self,
        letter: &Letter,
        issue: &LetterIssue<'_>,
        now: DateTime<Utc>,
    ) -> Result<IssueQueued, Error> {
        let t = ms(now);
        let lead = *letter
            .posts
            .last()
            .ok_or_else(|| Error::Internal("a letter needs at least one post".into()))?;
        // A post's own issue and the welcome with a post are made once, then added to.
        let existing = if matches!(issue.kind, IssueKind::Post | IssueKind::Welcome) {
            let sql =
                format!("SELECT {ISSUE_COLUMNS} FROM issues WHERE post_id = $1 AND kind = $2");
            sqlx::query(&sql)
                .bind(lead)
                .bind(issue.kind.as_str())
                .fetch_optional(&mut *self.tx)
                .await
                .db("reading a post's issue")?
        } else {
            None
        };
        let (row, created) = match existing {
            Some(row) => (row, false),
            None => {
                let sql = format!(
                    "INSERT INTO issues (post_id, subject, kind, origin, created_at, frequency) \
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING {ISSUE_COLUMNS}"
                );
                let row = sqlx::query(&sql)
                    .bind(lead)
                    .bind(issue.subject)
                    .bind(issue.kind.as_str())
                    .bind(issue.origin.as_str())
                    .bind(t)
                    .bind(issue.frequency.map(|f| f.as_str()))
                    .fetch_one(&mut *self.tx)
                    .await
                    .db("creating an issue")?;
                (row, true)
            }
        };
        let record = issue_from_row(&row).db("decoding an issue")?;
        if created {
            for post_id in &letter.posts {
                sqlx::query("INSERT INTO issue_posts (issue_id, post_id) VALUES ($1, $2)")
                    .bind(record.id)
                    .bind(post_id)
                    .execute(&mut *self.tx)
                    .await
                    .db("recording the posts of an issue")?;
            }
        }
        let mut queued = 0;
        // Whole groups in one statement each, less the readers who had one of the
        // posts (this issue's own rows aside): those are named one by one. The
        // issue's posts are the letter's, read from `issue_posts` so that no
        // number of posts passes the database's limit on parameters.
        if let (Some((frequency, default)), false) = (letter.audience, letter.groups.is_empty()) {
            let sql = format!(
                "INSERT INTO deliveries (issue_id, subscriber_id, status, attempts, created_at, updated_at, next_attempt_at) \
                 SELECT $1, id, 'queued', 0, $2, $2, $2 FROM subscribers WHERE status = 'active' \
                 AND COALESCE(frequency, $3) = $4 AND COALESCE(topics, '') IN ({}) \
                 AND id NOT IN (SELECT d.subscriber_id FROM issue_posts ip JOIN deliveries d ON d.issue_id = ip.issue_id \
                 WHERE ip.post_id IN (SELECT post_id FROM issue_posts WHERE issue_id = $1) \
                 AND d.status <> 'skipped' AND d.issue_id <> $1) \
                 ON CONFLICT (issue_id, subscriber_id) DO NOTHING",
                placeholders(5, letter.groups.len()),
            );
            let mut query = sqlx::query(&sql)
                .bind(record.id)
                .bind(t)
                .bind(default.as_str())
                .bind(frequency.as_str());
            for topics in &letter.groups {
                query = query.bind(topics);
            }
            queued += query
                .execute(&mut *self.tx)
                .await
                .db("queueing deliveries")?
                .rows_affected();
        }
        if !letter.ids.is_empty() {
            let sql = format!(
                "INSERT INTO deliveries (issue_id, subscriber_id, status, attempts, created_at, updated_at, next_attempt_at) \
                 SELECT $1, id, 'queued', 0, $2, $2, $2 FROM subscribers WHERE status = 'active' AND id IN ({}) \
                 ON CONFLICT (issue_id, subscriber_id) DO NOTHING",
                self.dialect.ids(3)
            );
            queued += sqlx::query(&sql)
                .bind(record.id)
                .bind(t)
                .bind(id_list(&letter.ids))
                .execute(&mut *self.tx)
                .await
                .db("queueing deliveries")?
                .rows_affected();
        }
        Ok(IssueQueued {
            issue: record,
            queued,
            created,
        })
    }
}

/// The letter of these posts, made when first asked for.
fn entry(
    letters: &mut BTreeMap<Vec<i64>, Letter>,
    posts: Vec<i64>,
    audience: Option<(Frequency, Frequency)>,
) -> &mut Letter {
    letters.entry(posts.clone()).or_insert_with(|| Letter {
        posts,
        count: 0,
        audience,
        groups: Vec::new(),
        ids: Vec::new(),
    })
}
