use std::process::ExitCode;

use super::{table, Output};
use crate::app::{App, PostStats, Stats};
use crate::error::Error;

pub async fn run(app: &App, out: &Output, slug: Option<&str>) -> Result<ExitCode, Error> {
    let stats = app.analytics().stats(slug).await?;
    out.print(&stats, || match (slug, stats.posts.first()) {
        (Some(_), Some(post)) => one_post(app, &stats, post),
        _ => every_post(app, &stats),
    });
    Ok(ExitCode::SUCCESS)
}

fn every_post(app: &App, stats: &Stats) -> String {
    let tz = app.config().site.timezone;
    let rows: Vec<Vec<String>> = stats
        .posts
        .iter()
        .map(|p| {
            let mut row = vec![
                p.slug.clone(),
                p.published_at
                    .with_timezone(&tz)
                    .format("%Y-%m-%d")
                    .to_string(),
                p.delivered.to_string(),
                format!("{} ({} unique)", p.clicks, p.unique_clicks),
            ];
            if stats.counted.opens {
                row.push(opens(p));
            }
            row.push(p.views.to_string());
            row
        })
        .collect();
    let mut header = vec!["post", "published", "delivered", "clicks"];
    if stats.counted.opens {
        header.push("opens");
    }
    header.push("views");
    let mut text = if rows.is_empty() {
        "no posts yet\n".to_string()
    } else {
        table(&header, &rows)
    };
    text.push_str(&followers(stats));
    text.push_str(&counted(stats));
    text
}

fn one_post(app: &App, stats: &Stats, p: &PostStats) -> String {
    let tz = app.config().site.timezone;
    let mut text = format!(
        "{} ({})\npublished  {}\ndelivered  {}\nclicks     {} ({} unique emails)\n",
        p.title,
        p.slug,
        p.published_at.with_timezone(&tz).format("%Y-%m-%d %H:%M"),
        p.delivered,
        p.clicks,
        p.unique_clicks,
    );
    if p.opens.is_some() {
        text.push_str(&format!("opens      {}\n", opens(p)));
    }
    text.push_str(&format!("views      {}\n", p.views));
    if !p.links.is_empty() {
        let rows: Vec<Vec<String>> = p
            .links
            .iter()
            .map(|l| {
                vec![
                    l.clicks.to_string(),
                    l.unique_clicks.to_string(),
                    l.url.clone(),
                ]
            })
            .collect();
        text.push_str("\nlinks\n");
        text.push_str(&table(&["clicks", "unique", "link"], &rows));
    }
    if !p.views_by_day.is_empty() {
        let rows: Vec<Vec<String>> = p
            .views_by_day
            .iter()
            .map(|d| vec![d.day.clone(), d.views.to_string()])
            .collect();
        text.push_str("\nviews by day\n");
        text.push_str(&table(&["day", "views"], &rows));
    }
    text.push_str(&followers(stats));
    text.push_str(&counted(stats));
    text
}

fn opens(p: &PostStats) -> String {
    match &p.opens {
        Some(o) => format!(
            "{} ({} unique; {} by machines)",
            o.human, o.unique, o.machine
        ),
        None => "not counted".to_string(),
    }
}

fn followers(stats: &Stats) -> String {
    if stats.followers.services.is_empty() {
        return "\nfeed followers: no feed service has reported any yet\n".to_string();
    }
    let rows: Vec<Vec<String>> = stats
        .followers
        .services
        .iter()
        .map(|s| vec![s.service.clone(), s.feed.clone(), s.followers.to_string()])
        .collect();
    format!(
        "\nfeed followers: {} in all, as the services report them\n{}",
        stats.followers.total,
        table(&["service", "feed", "followers"], &rows)
    )
}

/// What the numbers are, and what is never kept.
fn counted(stats: &Stats) -> String {
    let on = |b: bool| if b { "on" } else { "off" };
    format!(
        "\ncounted: clicks {}, opens {}, views {}. Nothing is recorded per person: unique \
         counts are estimates (±1.6 %) over a random tag per email; an open is a picture \
         loaded, not proof of reading, and machines' opens are apart.\n",
        on(stats.counted.clicks),
        on(stats.counted.opens),
        on(stats.counted.views)
    )
}
