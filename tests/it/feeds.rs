//! Feed correctness: every rule is checked on feeds parsed back with the `rss` and
//! `atom_syndication` crates (and serde for JSON Feed).

use crate::support::TestSite;
use chrono::{DateTime, Datelike, Duration, Utc};

fn write_posts(site: &TestSite) {
    site.write_post(
        "first.md",
        "+++\ntitle = \"첫 글: <꺾쇠> & ]]> 끝\"\ndate = \"2026-11-02 21:30\"\ntags = [\"독서\", \"습관\"]\n+++\n\n첫 문단 [상대](../second/) ![그림](img/a.png)\n\n<img srcset=\"a.png 1x, /b.png 2x\" src=\"c.png\"> 코드 `a ]]> b`\n",
    );
    site.write_post(
        "second.md",
        "---\ntitle: Second essay\ndate: 2026-10-18 08:00\nupdated: 2026-10-20 09:15\nemail: false\ntags: [walking]\n---\nA walk [home](/).\n",
    );
    site.write_post(
        "third.md",
        "+++\ntitle = \"셋째\"\ndate = 2026-09-01T10:00:00+09:00\n+++\n셋째 글\n",
    );
    site.write_post(
        "draft.md",
        "+++\ntitle = \"초안\"\ndate = \"2026-11-01\"\ndraft = true\n+++\n비밀\n",
    );
    site.write_post(
        "future.md",
        "+++\ntitle = \"미래\"\ndate = \"2099-01-01\"\n+++\n아직\n",
    );
}

async fn feeds_of(site: &TestSite) -> (String, String, serde_json::Value) {
    let app = site.app().await;
    app.tick().sync_posts(Utc::now()).await.unwrap();
    let snapshot = app.site().snapshot(Utc::now()).await.unwrap();
    let body = |path: &str| {
        String::from_utf8(
            snapshot
                .pages
                .iter()
                .find(|p| p.path == path)
                .unwrap()
                .body
                .clone(),
        )
        .unwrap()
    };
    let json = serde_json::from_str(&body("feed.json")).unwrap();
    (body("feed.xml"), body("atom.xml"), json)
}

fn assert_absolute_urls(html: &str) {
    for attr in ["href=\"", "src=\"", "srcset=\""] {
        for value in html.split(attr).skip(1) {
            let value = value.split('"').next().unwrap();
            for url in value.split(", ") {
                assert!(url.starts_with("https://"), "relative URL: {attr}{value}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rss_follows_every_rule() {
    let site = TestSite::new(None);
    write_posts(&site);
    let (xml, _, _) = feeds_of(&site).await;
    let channel = rss::Channel::read_from(xml.as_bytes()).expect("valid RSS");

    assert_eq!(channel.title(), "느린 편지");
    assert_eq!(channel.link(), "https://essays.example.com/");
    assert!(!channel.description().is_empty());
    assert_eq!(channel.language(), Some("ko"));
    let self_link = &channel.atom_ext().unwrap().links()[0];
    assert_eq!(self_link.rel(), "self");
    assert_eq!(self_link.href(), "https://essays.example.com/feed.xml");
    assert!(xml.contains("xmlns:atom=\"http://www.w3.org/2005/Atom\""));
    assert!(xml.contains("xmlns:content=\"http://purl.org/rss/1.0/modules/content/\""));

    // Newest first; drafts and future posts are out; email = false is in.
    let titles: Vec<_> = channel.items().iter().map(|i| i.title().unwrap()).collect();
    assert_eq!(
        titles,
        vec!["첫 글: <꺾쇠> & ]]> 끝", "Second essay", "셋째"]
    );

    // lastBuildDate is the newest post's date, not the build time.
    assert_eq!(
        channel.last_build_date(),
        Some("Mon, 2 Nov 2026 21:30:00 +0900")
    );

    let mut guids = std::collections::HashSet::new();
    for item in channel.items() {
        let guid = item.guid().unwrap();
        assert!(!guid.is_permalink(), "tag: ids are not permalinks");
        assert!(guid.value().starts_with("tag:essays.example.com,"));
        assert!(guids.insert(guid.value().to_string()), "guids are unique");
        let pub_date = item.pub_date().unwrap();
        let parsed = DateTime::parse_from_rfc2822(pub_date).unwrap();
        assert!(pub_date.ends_with(" +0900"), "numeric offset: {pub_date}");
        assert!(
            pub_date.contains(&format!(" {} ", parsed.year())),
            "four-digit year: {pub_date}"
        );
        assert!(
            pub_date.starts_with(&parsed.weekday().to_string()),
            "weekday: {pub_date}"
        );
        assert!(item
            .link()
            .unwrap()
            .starts_with("https://essays.example.com/posts/"));
        assert!(!item.description().unwrap().is_empty());
        assert_absolute_urls(item.content().unwrap());
        assert_eq!(
            item.dublin_core_ext().unwrap().creators(),
            &["Jerry".to_string()]
        );
        assert!(
            item.author().is_none(),
            "RSS <author> must be an email address, so it is left out"
        );
    }
    let first = &channel.items()[0];
    assert_eq!(first.pub_date(), Some("Mon, 2 Nov 2026 21:30:00 +0900"));
    let tags: Vec<_> = first.categories().iter().map(|c| c.name()).collect();
    assert_eq!(tags, vec!["독서", "습관"]);
    assert!(
        first.content().unwrap().contains("a ]]&gt; b"),
        "{}",
        first.content().unwrap()
    );
    assert!(first
        .content()
        .unwrap()
        .contains("https://essays.example.com/posts/second/"));
    assert!(first
        .content()
        .unwrap()
        .contains("https://essays.example.com/posts/first/img/a.png"));
    // description comes before content:encoded in every item.
    for item_xml in xml.split("<item>").skip(1) {
        assert!(
            item_xml.find("<description>").unwrap() < item_xml.find("<content:encoded>").unwrap()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn atom_follows_every_rule() {
    let site = TestSite::new(None);
    write_posts(&site);
    let (_, xml, _) = feeds_of(&site).await;
    let feed = atom_syndication::Feed::read_from(xml.as_bytes()).expect("valid Atom");
    assert_eq!(feed.title().as_str(), "느린 편지");
    assert!(feed.id().starts_with("tag:essays.example.com,"));
    assert_eq!(feed.updated().to_rfc3339(), "2026-11-02T21:30:00+09:00");
    assert_eq!(feed.lang(), Some("ko"));
    assert_eq!(feed.authors()[0].name(), "Jerry");
    let rels: Vec<_> = feed.links().iter().map(|l| (l.rel(), l.href())).collect();
    assert!(rels.contains(&("self", "https://essays.example.com/atom.xml")));
    assert!(rels.contains(&("alternate", "https://essays.example.com/")));
    assert_eq!(
        xml.matches("<id>").count(),
        1 + feed.entries().len(),
        "one id each"
    );
    assert_eq!(
        xml.matches("<updated>").count(),
        1 + feed.entries().len(),
        "one updated each"
    );
    for updated in xml.split("<updated>").skip(1) {
        let value = updated.split('<').next().unwrap();
        assert!(
            DateTime::parse_from_rfc3339(value).is_ok()
                && value.contains('T')
                && value.ends_with("+09:00"),
            "{value}"
        );
    }
    assert_eq!(feed.entries().len(), 3);
    let second = &feed.entries()[1];
    assert_eq!(second.title().as_str(), "Second essay");
    assert_eq!(
        second.published().unwrap().to_rfc3339(),
        "2026-10-18T08:00:00+09:00"
    );
    assert_eq!(second.updated().to_rfc3339(), "2026-10-20T09:15:00+09:00");
    let first = &feed.entries()[0];
    assert_eq!(first.title().as_str(), "첫 글: <꺾쇠> & ]]> 끝");
    let content = first.content().unwrap();
    assert_eq!(content.content_type(), Some("html"));
    assert!(content.value().unwrap().contains("첫 문단"));
    assert_absolute_urls(content.value().unwrap());
    assert_eq!(first.links()[0].rel(), "alternate");
    assert_eq!(first.categories().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn json_feed_has_the_required_members() {
    let site = TestSite::new(None);
    write_posts(&site);
    let (_, _, json) = feeds_of(&site).await;
    assert_eq!(json["version"], "https://jsonfeed.org/version/1.1");
    assert_eq!(json["title"], "느린 편지");
    assert_eq!(json["home_page_url"], "https://essays.example.com/");
    assert_eq!(json["feed_url"], "https://essays.example.com/feed.json");
    assert_eq!(json["language"], "ko");
    assert_eq!(json["authors"][0]["name"], "Jerry");
    let items = json["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    for item in items {
        assert!(item["id"].is_string());
        for key in ["url", "title", "content_html", "summary", "date_published"] {
            assert!(item[key].as_str().is_some_and(|s| !s.is_empty()), "{key}");
        }
        assert!(item["tags"].is_array());
        assert_absolute_urls(item["content_html"].as_str().unwrap());
    }
    assert_eq!(items[0]["date_published"], "2026-11-02T21:30:00+09:00");
    assert_eq!(items[1]["date_modified"], "2026-10-20T09:15:00+09:00");
}

#[tokio::test(flavor = "multi_thread")]
async fn feeds_are_deterministic_limited_and_ids_survive_renames_and_https() {
    let site = TestSite::new(None);
    write_posts(&site);
    let (rss1, atom1, json1) = feeds_of(&site).await;
    let (rss2, atom2, json2) = feeds_of(&site).await;
    assert_eq!(
        (&rss1, &atom1, &json1),
        (&rss2, &atom2, &json2),
        "byte-identical when nothing changed"
    );

    let ids = |atom: &str| -> Vec<String> {
        atom_syndication::Feed::read_from(atom.as_bytes())
            .unwrap()
            .entries()
            .iter()
            .map(|e| e.id().to_string())
            .collect()
    };
    let before = ids(&atom1);

    // Rename a file, edit a post, and move the site from http to https... and back.
    site.rename_post("third.md", "셋째-글.md");
    site.write_post(
        "first.md",
        &std::fs::read_to_string(site.path().join("posts/first.md"))
            .unwrap()
            .replace("첫 문단", "고친 첫 문단"),
    );
    let config = std::fs::read_to_string(site.config_path()).unwrap();
    std::fs::write(
        site.config_path(),
        config.replace("https://essays.example.com", "http://essays.example.com"),
    )
    .unwrap();
    let (_, atom3, _) = feeds_of(&site).await;
    assert_eq!(ids(&atom3), before, "ids do not change");
    assert!(atom3.contains("고친 첫 문단"));
    assert!(
        atom3.contains("http://essays.example.com/posts/%EC%85%8B%EC%A7%B8-%EA%B8%80/"),
        "new URL, same id"
    );

    // [feeds] limit.
    let config = std::fs::read_to_string(site.config_path()).unwrap();
    std::fs::write(
        site.config_path(),
        format!("{config}\n[feeds]\nlimit = 2\n"),
    )
    .unwrap();
    let (rss, atom, json) = feeds_of(&site).await;
    assert_eq!(
        rss::Channel::read_from(rss.as_bytes())
            .unwrap()
            .items()
            .len(),
        2
    );
    assert_eq!(ids(&atom), before[..2].to_vec());
    assert_eq!(json["items"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scheduled_post_appears_when_its_date_comes() {
    let site = TestSite::new(None);
    let app = site.app().await;
    let soon = Utc::now() + Duration::hours(1);
    site.write_post("soon.md", &crate::support::post("곧", soon, "본문"));
    app.tick().sync_posts(Utc::now()).await.unwrap();
    let now = app.site().snapshot(Utc::now()).await.unwrap();
    assert!(now.posts.is_empty());
    let later = app
        .site()
        .snapshot(soon + Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(later.posts.len(), 1);
    assert_ne!(
        now.version, later.version,
        "the cache key changes when a post goes live"
    );
}
