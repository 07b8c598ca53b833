//! What readers do after a send, counted without recording anyone: clicks on
//! an email's links, opens of its pixel, archive page views and the readers
//! feed services report.
//!
//! A click is a redirect before it is a count: counts are kept in memory and
//! written every few seconds ([`Analytics::flush`]), so a crash loses at most
//! those seconds of counts. What is written is counts and sketches only; all
//! that is kept of a client is, for one minute and in memory, keyed hashes of
//! its address (an IPv6 client's /64) and network with what it asked for, so
//! that a flood counts once and a gateway's burst of opens is told apart.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use super::Context;
use crate::analytics::{followers, is_machine, machine_open};
use crate::error::Error;
use crate::store::{Engagement, FeedFollowers, LinkCount, Tallies};

/// Different (client, thing) pairs remembered per minute. Past it, nothing
/// more is counted until the minute turns: a flood does not make numbers.
const RECENT_MAX: usize = 100_000;

/// Opens of other emails from one network within this many seconds make an
/// open a gateway's ([`crate::analytics::MachineOpen::Burst`]).
const BURST_SECONDS: i64 = 10;
/// How many other emails' opens in that time make a burst.
const BURST_OPENS: usize = 2;

/// One request, as counting sees it.
#[derive(Debug, Clone, Copy)]
pub struct Visit<'a> {
    pub peer: IpAddr,
    pub agent: Option<&'a str>,
    /// False for a `HEAD` and for a browser's prefetch (`Purpose: prefetch`,
    /// `Sec-Purpose: prefetch`): nobody has read anything yet.
    pub counts: bool,
    pub now: DateTime<Utc>,
}

/// The counting service, cheap to clone; one per process.
#[derive(Clone)]
pub struct Analytics {
    context: Arc<Context>,
    pending: Arc<Mutex<Tallies>>,
    recent: Arc<Mutex<Recent>>,
}

/// What was asked in this minute, as keyed hashes of the client's network
/// and the thing asked for; nothing else of a client is kept, and all of it
/// goes when the minute turns.
struct Recent {
    minute: i64,
    seen: HashSet<u64>,
    /// Per network (/24, /48): when it opened which email, this minute.
    opens: HashMap<u64, Vec<(i64, u64)>>,
    /// Keyed per process: the hashes mean nothing outside it.
    hasher: std::collections::hash_map::RandomState,
}

/// A client as counting tells clients apart: its address, but an IPv6
/// client by its /64, which one machine can fill with addresses.
fn client(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        other => other,
    }
}

/// The network a client is in, as a gateway spans it: its /24 or /48.
fn network(peer: IpAddr) -> (u8, [u8; 6]) {
    match peer {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            (4, [o[0], o[1], o[2], 0, 0, 0])
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => network(IpAddr::V4(v4)),
            None => {
                let o = v6.octets();
                (6, [o[0], o[1], o[2], o[3], o[4], o[5]])
            }
        },
    }
}

impl Recent {
    fn turn(&mut self, now: DateTime<Utc>) {
        let minute = now.timestamp().div_euclid(60);
        if minute != self.minute {
            self.minute = minute;
            self.seen.clear();
            self.opens.clear();
        }
    }

    /// True the first time `peer` asks for `what` in this minute.
    fn first(&mut self, peer: IpAddr, what: &str, now: DateTime<Utc>) -> bool {
        self.turn(now);
        if self.seen.len() >= RECENT_MAX {
            return false;
        }
        self.seen.insert(self.hasher.hash_one((client(peer), what)))
    }

    /// Notes that `peer`'s network opened the email with `tag`, and says
    /// whether it opened other emails just before (a burst).
    fn burst(&mut self, peer: IpAddr, tag: u64, now: DateTime<Utc>) -> bool {
        self.turn(now);
        let t = now.timestamp();
        let key = self.hasher.hash_one(network(peer));
        if self.opens.len() >= RECENT_MAX && !self.opens.contains_key(&key) {
            return false;
        }
        let recent = self.opens.entry(key).or_default();
        recent.retain(|(at, _)| t - at <= BURST_SECONDS);
        let others = recent.iter().filter(|(_, other)| *other != tag).count();
        if recent.len() < 64 {
            recent.push((t, tag));
        }
        others >= BURST_OPENS
    }
}

impl Analytics {
    pub(super) fn new(context: Arc<Context>) -> Analytics {
        Analytics {
            context,
            pending: Arc::default(),
            recent: Arc::new(Mutex::new(Recent {
                minute: 0,
                seen: HashSet::new(),
                opens: HashMap::new(),
                hasher: std::collections::hash_map::RandomState::new(),
            })),
        }
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn first(&self, visit: &Visit<'_>, what: &str) -> bool {
        self.recent().first(visit.peer, what, visit.now)
    }

    fn tally(&self, add: impl FnOnce(&mut Tallies)) {
        add(&mut self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner));
    }

    /// `GET /c/{token}`: the link the token names, or `None` when the token
    /// is not one of ours (forged, cut, or a link paired with another issue's
    /// email). Counted when clicks are on and a person asked.
    pub fn click(&self, token: &str, visit: &Visit<'_>) -> Option<String> {
        let tokens = self.context.links.tokens();
        let (link, tag) = token.split_once('.')?;
        let email = tokens.verify_email_tag(tag).ok()?;
        let url = tokens.verify_counted_link(email.issue_id, link).ok()?;
        // The cheap test first: most requests of a flood stop at it.
        if self.context.config.analytics.clicks
            && visit.counts
            && self.first(visit, token)
            && !is_machine(visit.agent)
        {
            self.tally(|t| {
                let issue = t.issues.entry(email.issue_id).or_default();
                issue.clicks.count += 1;
                issue.clicks.sketch.insert(email.tag);
                let link = t.links.entry((email.issue_id, url.clone())).or_default();
                link.count += 1;
                link.sketch.insert(email.tag);
            });
        }
        Some(url)
    }

    /// `GET /o/{token}`: whether the token is one of ours. Counted when opens
    /// are on: a person's open as a read, a machine's apart.
    pub fn open(&self, token: &str, visit: &Visit<'_>) -> bool {
        let Ok(email) = self.context.links.tokens().verify_email_tag(token) else {
            return false;
        };
        if self.context.config.analytics.opens && visit.counts && self.first(visit, token) {
            let burst = self.recent().burst(visit.peer, email.tag, visit.now);
            let machine = machine_open(visit.agent, visit.peer, burst);
            self.tally(|t| {
                let issue = t.issues.entry(email.issue_id).or_default();
                match machine {
                    Some(_) => issue.machine_opens += 1,
                    None => {
                        issue.opens.count += 1;
                        issue.opens.sketch.insert(email.tag);
                    }
                }
            });
        }
        true
    }

    /// A post's archive page was served.
    pub fn viewed(&self, slug: &str, visit: &Visit<'_>) {
        if !self.context.config.analytics.views
            || !visit.counts
            || !self.first(visit, slug)
            || is_machine(visit.agent)
        {
            return;
        }
        let day = visit
            .now
            .with_timezone(&self.context.config.site.timezone)
            .format("%Y-%m-%d")
            .to_string();
        self.tally(|t| *t.views.entry((slug.to_string(), day)).or_default() += 1);
    }

    /// A feed (`feed.xml`, `atom.xml`, `feed.json`) was fetched: a service
    /// that says how many of its users follow it is heard.
    pub fn feed_fetched(&self, feed: &str, agent: Option<&str>, now: DateTime<Utc>) {
        let Some(f) = agent.and_then(followers) else {
            return;
        };
        self.tally(|t| {
            t.followers
                .insert((feed.to_string(), f.service), (i64::from(f.count), now));
        });
    }

    /// Writes what was counted since the last call. On failure the counts
    /// are kept for the next one.
    pub async fn flush(&self) -> Result<(), Error> {
        let taken = std::mem::take(
            &mut *self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if taken.is_empty() {
            return Ok(());
        }
        let result = self.context.store.add_tallies(&taken).await;
        if result.is_err() {
            self.tally(|t| t.absorb(taken));
        }
        result
    }

    /// What happened after the send, for every post or the one with `slug`
    /// (its views then day by day), and the feeds' followers.
    pub async fn stats(&self, slug: Option<&str>) -> Result<Stats, Error> {
        Ok(Stats {
            counted: self.context.config.analytics,
            posts: self.posts(slug).await?,
            followers: self.followers().await?,
        })
    }

    /// Every post's numbers, or those of the post with `slug` (with its views
    /// day by day).
    pub async fn posts(&self, slug: Option<&str>) -> Result<Vec<PostStats>, Error> {
        let store = &self.context.store;
        let rows = store.post_counts(slug).await?;
        if let (Some(slug), true) = (slug, rows.is_empty()) {
            return Err(Error::PostNotFound(slug.to_string()));
        }
        let opens_on = self.context.config.analytics.opens;
        let mut posts = Vec::with_capacity(rows.len());
        for row in rows {
            let engagement = match row.issue_id {
                Some(id) => store.engagement(id).await?,
                None => Engagement::default(),
            };
            let views_by_day = match slug {
                Some(_) => store
                    .post_views(row.post_id)
                    .await?
                    .into_iter()
                    .map(|(day, views)| DayViews { day, views })
                    .collect(),
                None => Vec::new(),
            };
            posts.push(PostStats {
                slug: row.slug,
                title: row.title,
                published_at: row.published_at,
                issue: row.issue_id,
                delivered: row.delivered,
                clicks: engagement.clicks,
                unique_clicks: engagement.unique_clicks,
                links: engagement.links,
                opens: (opens_on || engagement.opens + engagement.machine_opens > 0).then_some(
                    Opens {
                        human: engagement.opens,
                        unique: engagement.unique_opens,
                        machine: engagement.machine_opens,
                    },
                ),
                views: row.views,
                views_by_day,
            });
        }
        Ok(posts)
    }

    /// What feed services last said of their readers.
    pub async fn followers(&self) -> Result<Followers, Error> {
        let services = self.context.store.feed_followers().await?;
        Ok(Followers {
            total: services.iter().map(|s| s.followers).sum(),
            services,
        })
    }

    /// Archive views of every post on each of the last `days` days.
    pub async fn views_by_day(
        &self,
        days: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<DayViews>, Error> {
        let today = now
            .with_timezone(&self.context.config.site.timezone)
            .date_naive();
        let first = today - chrono::Duration::days(days - 1);
        let seen: Vec<DayViews> = self
            .context
            .store
            .views_by_day(&first.format("%Y-%m-%d").to_string())
            .await?
            .into_iter()
            .map(|(day, views)| DayViews { day, views })
            .collect();
        Ok(last_days(&seen, days, today))
    }
}

/// What `stats` shows: per post, and the feeds' followers.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Stats {
    /// What this site counts (`[analytics]`).
    pub counted: crate::config::AnalyticsConfig,
    pub posts: Vec<PostStats>,
    pub followers: Followers,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PostStats {
    pub slug: String,
    pub title: String,
    pub published_at: DateTime<Utc>,
    /// The issue the post went out in (a digest's is shared by its posts).
    pub issue: Option<i64>,
    /// Emails the relay accepted.
    pub delivered: i64,
    pub clicks: i64,
    /// Different emails with a click, estimated (±1.6 %).
    pub unique_clicks: u64,
    /// Most clicked first.
    pub links: Vec<LinkCount>,
    /// Absent while opens are not counted.
    pub opens: Option<Opens>,
    pub views: i64,
    /// Day by day, for one post.
    pub views_by_day: Vec<DayViews>,
}

/// Opens of the pixel: by people (counted as reads) and by machines.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Opens {
    pub human: i64,
    /// Different emails opened by a person, estimated.
    pub unique: u64,
    /// Privacy proxies, security scanners, fetches within seconds of the send.
    pub machine: i64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct DayViews {
    pub day: String,
    pub views: i64,
}

/// The `days` days up to `today` (oldest first), with the views `seen` has
/// for each and zero for the others: a chart's points.
pub fn last_days(seen: &[DayViews], days: i64, today: chrono::NaiveDate) -> Vec<DayViews> {
    (0..days)
        .rev()
        .map(|back| {
            let day = (today - chrono::Duration::days(back))
                .format("%Y-%m-%d")
                .to_string();
            let views = seen.iter().find(|d| d.day == day).map_or(0, |d| d.views);
            DayViews { day, views }
        })
        .collect()
}

/// Readers that feed services say they have, as each last said it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Followers {
    pub total: i64,
    pub services: Vec<FeedFollowers>,
}
