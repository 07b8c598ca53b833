//! Following an existing blog (`[posts] feed`): part of every tick.

use chrono::{DateTime, Utc};

use super::tick::{Tick, UpstreamSync};
use crate::domain::FetchStatus;
use crate::error::Error;
use crate::posts::upstream::{self, Fetch};

impl Tick {
    /// Fetches the upstream feed and stores its entries as posts. A failed fetch
    /// (4xx/5xx, timeout, broken XML) is logged and recorded and changes nothing
    /// else; it never stops the tick.
    pub async fn sync_upstream(&self, now: DateTime<Utc>) -> Result<Option<UpstreamSync>, Error> {
        let c = &self.context;
        let Some(url) = &c.config.posts.feed else {
            return Ok(None);
        };
        let source = c.store.source(url.as_str(), now).await?;
        let fetch_url = url::Url::parse(&source.fetch_url).unwrap_or_else(|_| url.clone());
        let user_agent = c.user_agent();
        let timeout = std::time::Duration::from_secs(c.config.posts.fetch_timeout_seconds);
        let fetched = upstream::fetch(
            url,
            &fetch_url,
            source.etag.as_deref(),
            source.last_modified.as_deref(),
            timeout,
            &user_agent,
        )
        .await;
        let result = |status, error: Option<String>, entries| UpstreamSync {
            url: url.to_string(),
            status,
            error,
            entries,
        };
        let shown = &fetch_url;
        let failed = |e: String| async move {
            tracing::warn!(url = %shown, error = %e, "the upstream feed could not be read; nothing changed");
            c.store
                .record_fetch(source.id, FetchStatus::Error, Some(&e), now)
                .await?;
            Ok::<_, Error>(Some(result(FetchStatus::Error, Some(e), None)))
        };
        let feed = match fetched {
            Ok(Fetch::NotModified) => {
                c.store
                    .record_fetch(source.id, FetchStatus::NotModified, None, now)
                    .await?;
                return Ok(Some(result(FetchStatus::NotModified, None, None)));
            }
            Ok(Fetch::Body(feed)) => feed,
            Err(e) => return failed(e).await,
        };
        let entries = upstream::decode(&feed.bytes, feed.charset.as_deref())
            .and_then(|text| upstream::parse(&text, &fetch_url));
        let entries = match entries {
            Ok(entries) => entries,
            Err(e) => return failed(e).await,
        };
        if let Some(to) = &feed.moved_to {
            tracing::info!(from = %fetch_url, to = %to, "the upstream feed moved permanently");
        }
        let new_url = feed.moved_to.unwrap_or_else(|| fetch_url.clone());
        let report = c
            .store
            .store_fetch(
                source.id,
                &entries,
                feed.etag.as_deref(),
                feed.last_modified.as_deref(),
                new_url.as_str(),
                &c.config.site_host(),
                c.config.site.timezone,
                now,
            )
            .await?;
        Ok(Some(result(FetchStatus::Ok, None, Some(report))))
    }
}
