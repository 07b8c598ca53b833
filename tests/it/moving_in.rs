//! Moving in from other services: their subscriber exports, written to each
//! service's documented columns, imported with the real binary into a real
//! database; then a real send shows who gets mail.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::support::{parse_message, post, TestSite};
use chrono::{Duration, Utc};

/// Writes `files` (name, contents) into a ZIP at `path`.
fn zip(path: &Path, files: &[(&str, &str)]) {
    let mut writer = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let options = zip::write::SimpleFileOptions::default();
    for (name, text) in files {
        writer.start_file(*name, options).unwrap();
        writer.write_all(text.as_bytes()).unwrap();
    }
    writer.finish().unwrap();
}

fn write(site: &TestSite, name: &str, text: &str) -> PathBuf {
    let path = site.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

async fn import(site: &TestSite, file: &Path, from: &[&str]) -> serde_json::Value {
    let mut args = vec!["--json", "subscribers", "import", file.to_str().unwrap()];
    args.extend_from_slice(from);
    let out = site.cli(&args).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    serde_json::from_str(&out.stdout).unwrap()
}

/// Every subscriber: address → (status, name, created_at, topics).
async fn subscribers(site: &TestSite) -> BTreeMap<String, serde_json::Value> {
    let out = site.cli(&["--json", "subscribers", "list"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let list: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|s| (s["email"].as_str().unwrap().to_string(), s.clone()))
        .collect()
}

fn status(list: &BTreeMap<String, serde_json::Value>, email: &str) -> String {
    list.get(email)
        .unwrap_or_else(|| panic!("{email} is not there: {list:?}"))["status"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_service_s_export_keeps_its_statuses_names_and_times_and_no_one_who_left_is_mailed() {
    let site = TestSite::new(None);
    site.append_config("[posts]\ntopics = [\"notes\", \"에세이\"]");

    // Mailchimp: the audience ZIP, one file per list.
    let archive = site.path().join("members_export_3f2a.zip");
    zip(
        &archive,
        &[
            (
                "subscribed_members_export_3f2a.csv",
                "\u{feff}Email Address,First Name,Last Name,MEMBER_RATING,OPTIN_TIME,OPTIN_IP,CONFIRM_TIME,CONFIRM_IP,LATITUDE,LONGITUDE,GMTOFF,DSTOFF,TIMEZONE,CC,REGION,LAST_CHANGED,LEID,EUID,NOTES,TAGS\n\
                 minji@example.com,Minji,Kim,2,2019-03-04 05:06:07,,2019-03-04 05:10:00,,,,,,,,,2020-01-01 00:00:00,1,a1,,\"\"\"에세이\"\",\"\"VIP\"\"\"\n\
                 seo@example.com,Seo,,2,2020-05-01 00:00:00,,,,,,,,,,,,2,a2,,\n",
            ),
            (
                "unsubscribed_members_export_3f2a.csv",
                "Email Address,First Name,Last Name,MEMBER_RATING,OPTIN_TIME,CONFIRM_TIME,UNSUB_TIME,UNSUB_CAMPAIGN_TITLE,UNSUB_CAMPAIGN_ID,UNSUB_REASON,UNSUB_REASON_OTHER,LEID,EUID,NOTES,TAGS\n\
                 left@example.com,Left,Early,1,2018-01-01 00:00:00,2018-01-01 00:01:00,2021-02-03 04:05:06,Essay 12,abc,NORMAL,,3,a3,,\n",
            ),
            (
                "cleaned_members_export_3f2a.csv",
                "Email Address,First Name,Last Name,MEMBER_RATING,OPTIN_TIME,CONFIRM_TIME,CLEAN_TIME,CLEAN_CAMPAIGN_TITLE,CLEAN_CAMPAIGN_ID,LEID,EUID,NOTES,TAGS\n\
                 gone@example.com,,,1,2018-01-01 00:00:00,,2022-02-02 02:02:02,Essay 20,def,4,a4,,\n",
            ),
        ],
    );
    let report = import(&site, &archive, &[]).await;
    assert_eq!(report["format"], "mailchimp", "{report}");
    assert_eq!(
        report["statuses"],
        serde_json::json!({"active": 2, "pending": 0, "unsubscribed": 1, "bounced": 1}),
        "{report}"
    );
    let list = subscribers(&site).await;
    assert_eq!(status(&list, "left@example.com"), "unsubscribed");
    assert_eq!(status(&list, "gone@example.com"), "bounced");
    let minji = &list["minji@example.com"];
    assert_eq!(minji["name"], "Minji Kim");
    assert_eq!(minji["created_at"], "2019-03-04T05:06:07Z");
    assert_eq!(
        minji["preferences"]["topics"],
        serde_json::json!(["에세이"]),
        "a tag that is one of posts.topics becomes a topic: {minji}"
    );

    // Substack, Ghost, listmonk, Buttondown and Kit, by their columns.
    let files = [
        (
            "substack.csv",
            "email,active_subscription,expiry,email_disabled,created_at\n\
             sub-on@example.com,false,,false,2021-01-02T03:04:05.000Z\n\
             sub-off@example.com,true,2023-01-01,true,2021-01-02T03:04:05.000Z\n",
            "substack",
        ),
        (
            "ghost.csv",
            "id,email,name,note,subscribed_to_emails,complimentary_plan,stripe_customer_id,created_at,deleted_at,labels,tiers\n\
             6123,ghost-on@example.com,유나,,true,false,,2020-07-08T09:10:11.000Z,,\"notes, 외부\",\n\
             6124,ghost-off@example.com,Ghost Off,,false,false,,2020-07-08T09:10:11.000Z,,,\n",
            "ghost",
        ),
        (
            "listmonk.csv",
            "uuid,email,name,attributes,status,created_at,updated_at\n\
             5f2c7a1e-0000-4000-8000-000000000001,lm-on@example.com,On,{},enabled,2021-06-14 08:29:52.139468+00,2021-06-14 08:29:52.139468+00\n\
             5f2c7a1e-0000-4000-8000-000000000002,lm-off@example.com,Off,{},disabled,2021-06-14 08:29:52+00,2022-01-01 00:00:00+00\n\
             5f2c7a1e-0000-4000-8000-000000000003,lm-block@example.com,Block,\"{\"\"city\"\": \"\"Seoul\"\"}\",blocklisted,2021-06-14 08:29:52+00,2022-01-01 00:00:00+00\n",
            "listmonk",
        ),
        (
            "buttondown.csv",
            "email,creation_date,subscriber_type,tags,notes,metadata\n\
             bd-on@example.com,2022-03-04T05:06:07Z,regular,\"['notes']\",,{}\n\
             bd-wait@example.com,2022-03-04T05:06:07Z,unactivated,,,{}\n\
             bd-off@example.com,2022-03-04T05:06:07Z,unsubscribed,,,{}\n\
             bd-bounce@example.com,2022-03-04T05:06:07Z,undeliverable,,,{}\n\
             bd-spam@example.com,2022-03-04T05:06:07Z,complained,,,{}\n",
            "buttondown",
        ),
        (
            "kit.csv",
            "first_name,email_address,state,created_at,tags\n\
             Kit,kit-on@example.com,active,2023-01-01 10:00:00 UTC,\n\
             Wait,kit-wait@example.com,inactive,2023-01-01T10:00:00Z,\n\
             Off,kit-off@example.com,cancelled,2023-01-01T10:00:00Z,\n\
             Bounce,kit-bounce@example.com,bounced,2023-01-01T10:00:00Z,\n\
             Spam,kit-spam@example.com,complained,2023-01-01T10:00:00Z,\n",
            "kit",
        ),
    ];
    for (name, text, format) in files {
        let report = import(&site, &write(&site, name, text), &[]).await;
        assert_eq!(report["format"], format, "{report}");
        assert!(
            report["rejected"].as_array().unwrap().is_empty(),
            "{report}"
        );
    }
    let list = subscribers(&site).await;
    for (email, want) in [
        ("sub-on@example.com", "active"),
        ("sub-off@example.com", "unsubscribed"),
        ("ghost-on@example.com", "active"),
        ("ghost-off@example.com", "unsubscribed"),
        ("lm-on@example.com", "active"),
        ("lm-off@example.com", "unsubscribed"),
        ("lm-block@example.com", "unsubscribed"),
        ("bd-on@example.com", "active"),
        ("bd-wait@example.com", "pending"),
        ("bd-off@example.com", "unsubscribed"),
        ("bd-bounce@example.com", "bounced"),
        ("bd-spam@example.com", "unsubscribed"),
        ("kit-on@example.com", "active"),
        ("kit-wait@example.com", "pending"),
        ("kit-off@example.com", "unsubscribed"),
        ("kit-bounce@example.com", "bounced"),
        ("kit-spam@example.com", "unsubscribed"),
    ] {
        assert_eq!(status(&list, email), want, "{email}");
    }
    assert_eq!(list["ghost-on@example.com"]["name"], "유나");
    assert_eq!(
        list["ghost-on@example.com"]["preferences"]["topics"],
        serde_json::json!(["notes"])
    );
    assert_eq!(
        list["lm-on@example.com"]["created_at"],
        "2021-06-14T08:29:52.139Z"
    );
    assert_eq!(
        list["sub-on@example.com"]["created_at"],
        "2021-01-02T03:04:05Z"
    );

    // Those who left in posthorn stay gone, whatever a later file says.
    assert_eq!(
        site.cli(&["subscribers", "add", "forget-me@example.com"])
            .await
            .code,
        0
    );
    assert_eq!(
        site.cli(&["subscribers", "forget", "forget-me@example.com"])
            .await
            .code,
        0
    );
    assert_eq!(
        site.cli(&["subscribers", "remove", "minji@example.com"])
            .await
            .code,
        0
    );
    let back = write(
        &site,
        "everyone.csv",
        "email,name\n\
         minji@example.com,Minji\n\
         gone@example.com,\n\
         kit-spam@example.com,\n\
         forget-me@example.com,\n\
         FORGET-ME@example.com,\n\
         new@example.com,New\n",
    );
    let report = import(&site, &back, &[]).await;
    assert_eq!(report["format"], "posthorn");
    assert_eq!(report["added"], 1, "{report}");
    assert_eq!(
        report["kept_away"],
        serde_json::json!({"unsubscribed": 1, "bounced": 1, "complained": 1, "forgotten": 1}),
        "{report}"
    );
    assert_eq!(report["rejected"][0]["reason"], "duplicate of row 5");
    let list = subscribers(&site).await;
    assert_eq!(status(&list, "minji@example.com"), "unsubscribed");
    assert!(
        !list.contains_key("forget-me@example.com"),
        "a forgotten address is not added back"
    );

    // A reader active in posthorn whom a later export lists as gone leaves.
    let later = write(
        &site,
        "listmonk-later.csv",
        "uuid,email,name,attributes,status,created_at,updated_at\n\
         x,new@example.com,New,{},blocklisted,2021-06-14 08:29:52+00,2099-01-01 00:00:00+00\n",
    );
    let report = import(&site, &later, &[]).await;
    assert_eq!(report["left_now"]["unsubscribed"], 1, "{report}");
    assert_eq!(
        status(&subscribers(&site).await, "new@example.com"),
        "unsubscribed"
    );

    // A send reaches exactly the active readers.
    site.write_post(
        "first.md",
        &post("First", Utc::now() - Duration::hours(1), "Hello."),
    );
    let send = site.cli(&["--json", "send", "first", "--yes"]).await;
    assert_eq!(send.code, 0, "{}", send.stderr);
    let mut mailed: Vec<String> = site
        .outbox()
        .iter()
        .map(|(_, bytes)| {
            let message = parse_message(bytes);
            let to = message.to().unwrap().first().unwrap();
            to.address().unwrap().to_string()
        })
        .collect();
    mailed.sort();
    let list = subscribers(&site).await;
    let active: Vec<String> = list
        .iter()
        .filter(|(_, s)| s["status"] == "active")
        .map(|(e, _)| e.clone())
        .collect();
    assert_eq!(mailed, active);
    assert_eq!(
        active,
        [
            "bd-on@example.com",
            "ghost-on@example.com",
            "kit-on@example.com",
            "lm-on@example.com",
            "seo@example.com",
            "sub-on@example.com",
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn posthorn_s_own_export_round_trips_with_statuses_names_and_times() {
    let first = TestSite::new(None);
    let list = write(
        &first,
        "list.csv",
        "email,name,status,created_at,frequency,topics\n\
         a@example.com,가나,active,2020-01-02T03:04:05Z,digest,\n\
         b@example.com,'=B,unsubscribed,2020-01-02T03:04:05Z,,\n\
         c@example.com,C,bounced,2020-01-02T03:04:05Z,,\n\
         d@example.com,D,pending,2020-01-02T03:04:05Z,,\n",
    );
    import(&first, &list, &["--from", "posthorn"]).await;
    let export = first.cli(&["subscribers", "export"]).await;
    assert_eq!(export.code, 0, "{}", export.stderr);
    let second = TestSite::new(None);
    let file = write(&second, "export.csv", &export.stdout);
    let report = import(&second, &file, &[]).await;
    assert_eq!(
        report["statuses"],
        serde_json::json!({"active": 1, "pending": 1, "unsubscribed": 1, "bounced": 1})
    );
    let strip = |list: BTreeMap<String, serde_json::Value>| -> Vec<serde_json::Value> {
        list.into_values()
            .map(|mut s| {
                s.as_object_mut().unwrap().remove("id");
                s
            })
            .collect()
    };
    assert_eq!(
        strip(subscribers(&first).await),
        strip(subscribers(&second).await)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_files_get_clear_errors_and_change_nothing() {
    let site = TestSite::new(None);
    let whole = site.path().join("whole.zip");
    zip(
        &whole,
        &[(
            "subscribed_members_export_1.csv",
            "Email Address,First Name\na@example.com,A\n",
        )],
    );
    let bytes = std::fs::read(&whole).unwrap();
    let cut = site.path().join("cut.zip");
    std::fs::write(&cut, &bytes[..bytes.len() - 30]).unwrap();
    let out = site
        .cli(&["subscribers", "import", cut.to_str().unwrap()])
        .await;
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("cut.zip") && out.stderr.contains("cut short"),
        "{}",
        out.stderr
    );

    let odd = write(&site, "odd.csv", "address,full name\na@example.com,A\n");
    let out = site
        .cli(&["subscribers", "import", odd.to_str().unwrap()])
        .await;
    assert_ne!(out.code, 0);
    for part in [
        "odd.csv",
        "`address`, `full name`",
        "mailchimp (`Email Address` with",
        "kit",
    ] {
        assert!(out.stderr.contains(part), "{part}: {}", out.stderr);
    }
    let out = site
        .cli(&[
            "subscribers",
            "import",
            odd.to_str().unwrap(),
            "--from",
            "ghost",
        ])
        .await;
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("odd.csv"), "{}", out.stderr);
    assert!(subscribers(&site).await.is_empty());

    // A 1 MB cell, NUL bytes and a byte-order mark: rows, not failures.
    let mut text = String::from("\u{feff}email,name\n");
    text.push_str(&format!("{}@example.com,big\n", "x".repeat(1 << 20)));
    text.push_str("nul\0@example.com,nul\n");
    text.push_str("fine@example.com,na\0me\n");
    let odd = write(&site, "odd-cells.csv", &text);
    let report = import(&site, &odd, &[]).await;
    assert_eq!(report["added"], 1, "{report}");
    let rejected = report["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2, "{report}");
    assert_eq!(rejected[0]["row"], 2);
    assert!(rejected[0]["value"].as_str().unwrap().chars().count() <= 101);
    assert_eq!(rejected[1]["row"], 3);
    assert_eq!(
        subscribers(&site).await["fine@example.com"]["name"],
        "na me"
    );
}

/// An old site's files over real HTTP: path → (media type, bytes); anything
/// else is a 404. Files may be added once its address is known.
type Files = std::sync::Arc<std::sync::Mutex<BTreeMap<String, (&'static str, Vec<u8>)>>>;

async fn old_site() -> (String, Files) {
    use axum::http::{header, StatusCode, Uri};
    use axum::response::IntoResponse;
    let files = Files::default();
    let served = files.clone();
    let app = axum::Router::new().fallback(move |uri: Uri| {
        let found = served.lock().unwrap().get(uri.path()).cloned();
        async move {
            match found {
                Some((kind, bytes)) => ([(header::CONTENT_TYPE, kind)], bytes).into_response(),
                None => StatusCode::NOT_FOUND.into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}"), files)
}

/// A PNG's first bytes are enough to be known as one.
fn png(tag: u8) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend_from_slice(&[tag; 32]);
    bytes
}

fn read(site: &TestSite, relative: &str) -> String {
    std::fs::read_to_string(site.path().join("posts").join(relative))
        .unwrap_or_else(|e| panic!("{relative}: {e}"))
}

async fn import_posts(site: &TestSite, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json", "posts", "import"];
    all.extend_from_slice(args);
    let out = site.cli(&all).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    serde_json::from_str(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_old_archive_comes_in_as_bundles_with_its_images_and_is_never_mailed() {
    let (old, files) = old_site().await;
    {
        let mut files = files.lock().unwrap();
        for (path, tag) in [
            ("/wp-content/uploads/2020/01/photo.png", 1),
            ("/content/images/ghost.png", 2),
            ("/substack/image.png", 3),
            ("/feed/pic.png", 4),
        ] {
            files.insert(path.into(), ("image/png", png(tag)));
        }
        files.insert(
            "/not-an-image.png".into(),
            ("text/html", b"<html>hello</html>".to_vec()),
        );
        let rss = format!(
            "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>t</title><link>{old}/</link>\
             <item><title>Tistory &amp; me</title><link>{old}/entry/tistory-post</link>\
             <guid>{old}/123</guid><pubDate>Mon, 02 Mar 2020 10:00:00 +0900</pubDate>\
             <category>notes</category>\
             <description><![CDATA[<p>From the feed.</p><p><img src=\"/feed/pic.png\"></p>]]></description></item>\
             </channel></rss>"
        );
        files.insert("/rss".into(), ("application/rss+xml", rss.into_bytes()));
    }
    let site = TestSite::new(None);
    // A reader who would get any new essay by email.
    assert_eq!(
        site.cli(&["subscribers", "add", "reader@example.com"])
            .await
            .code,
        0
    );
    site.write_post(
        "taken.md",
        &post("Mine", Utc::now() - Duration::days(3), "Mine."),
    );
    let mine = read(&site, "taken.md");

    let wxr = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:excerpt="http://wordpress.org/export/1.2/excerpt/" xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:wfw="http://wellformedweb.org/CommentAPI/" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:wp="http://wordpress.org/export/1.2/">
<channel>
  <title>Old blog</title>
  <link>{old}</link>
  <wp:wxr_version>1.2</wp:wxr_version>
  <item>
    <title>첫 글 &amp; 그림</title>
    <link>{old}/2020/01/first/</link>
    <pubDate>Thu, 02 Jan 2020 01:02:03 +0000</pubDate>
    <dc:creator><![CDATA[jerry]]></dc:creator>
    <content:encoded><![CDATA[<!-- wp:paragraph --><p>Hello <strong>there</strong>, <a href="/about/" rel="nofollow">about</a>.</p><!-- /wp:paragraph -->
<figure class="wp-block-image"><img src="/wp-content/uploads/2020/01/photo.png" alt="사진" class="wp-image-7" srcset="/wp-content/uploads/2020/01/photo-300.png 300w" /></figure>
<p><img src="{old}/missing.png" alt="gone"><img src="{old}/not-an-image.png"></p><script>alert(1)</script>]]></content:encoded>
    <wp:post_id>12</wp:post_id>
    <wp:post_date_gmt><![CDATA[2020-01-02 01:02:03]]></wp:post_date_gmt>
    <wp:post_name><![CDATA[%ec%b2%ab-%ea%b8%80]]></wp:post_name>
    <wp:status><![CDATA[publish]]></wp:status>
    <wp:post_type><![CDATA[post]]></wp:post_type>
    <category domain="category" nicename="essays"><![CDATA[Essays]]></category>
    <category domain="post_tag" nicename="notes"><![CDATA[notes]]></category>
  </item>
  <item>
    <title>Unfinished</title>
    <content:encoded><![CDATA[One line.

Two.]]></content:encoded>
    <wp:post_id>13</wp:post_id>
    <wp:post_date_gmt><![CDATA[2021-05-05 05:05:05]]></wp:post_date_gmt>
    <wp:post_name><![CDATA[unfinished]]></wp:post_name>
    <wp:status><![CDATA[draft]]></wp:status>
    <wp:post_type><![CDATA[post]]></wp:post_type>
  </item>
  <item>
    <title>Secret</title>
    <content:encoded><![CDATA[<p>For friends.</p>]]></content:encoded>
    <wp:post_date_gmt><![CDATA[2021-06-06 06:06:06]]></wp:post_date_gmt>
    <wp:post_name><![CDATA[secret]]></wp:post_name>
    <wp:status><![CDATA[publish]]></wp:status>
    <wp:post_password><![CDATA[hunter2]]></wp:post_password>
    <wp:post_type><![CDATA[post]]></wp:post_type>
  </item>
  <item>
    <title>Secret twin</title>
    <content:encoded><![CDATA[<p>Same slug.</p>]]></content:encoded>
    <wp:post_date_gmt><![CDATA[2021-06-07 06:06:06]]></wp:post_date_gmt>
    <wp:post_name><![CDATA[secret]]></wp:post_name>
    <wp:status><![CDATA[publish]]></wp:status>
    <wp:post_type><![CDATA[post]]></wp:post_type>
  </item>
  <item>
    <title>Mine again</title>
    <content:encoded><![CDATA[<p>x</p>]]></content:encoded>
    <wp:post_date_gmt><![CDATA[2021-05-05 05:05:05]]></wp:post_date_gmt>
    <wp:post_name><![CDATA[taken]]></wp:post_name>
    <wp:status><![CDATA[publish]]></wp:status>
    <wp:post_type><![CDATA[post]]></wp:post_type>
  </item>
  <item>
    <title>About</title>
    <wp:post_name><![CDATA[about]]></wp:post_name>
    <wp:status><![CDATA[publish]]></wp:status>
    <wp:post_type><![CDATA[page]]></wp:post_type>
  </item>
  <item>
    <title>photo</title>
    <wp:post_type><![CDATA[attachment]]></wp:post_type>
  </item>
</channel>
</rss>
"#
    );
    let wxr_path = write(&site, "wordpress.xml", &wxr);
    let report = import_posts(&site, &[wxr_path.to_str().unwrap()]).await;
    assert_eq!(report["format"], "wordpress", "{report}");
    assert_eq!(
        report["imported"],
        serde_json::json!(["첫-글", "unfinished", "secret"]),
        "{report}"
    );
    assert_eq!(report["already_there"], serde_json::json!(["taken"]));
    assert_eq!(report["skipped"].as_array().unwrap().len(), 3, "{report}");
    assert!(
        report["skipped"][2]["reason"]
            .as_str()
            .unwrap()
            .contains("slug `secret` is also"),
        "{report}"
    );
    assert_eq!(
        report["made_drafts"][0]["reason"],
        "password-protected on WordPress"
    );
    assert!(read(&site, "secret/index.md").contains("draft = true"));
    assert_eq!(report["images"], 1);
    let failed = report["failed_images"].as_array().unwrap();
    assert_eq!(failed.len(), 2, "{report}");
    assert!(
        failed[0]["reason"].as_str().unwrap().contains("404"),
        "{report}"
    );
    assert!(
        failed[1]["reason"]
            .as_str()
            .unwrap()
            .contains("not an image"),
        "{report}"
    );

    let first = read(&site, "첫-글/index.md");
    for part in [
        "title = \"첫 글 & 그림\"",
        "date = \"2020-01-02T10:02:03+09:00\"",
        "slug = \"첫-글\"",
        "tags = [\"Essays\", \"notes\"]",
        "email = false",
        "Hello **there**, [about](",
        "/about/)",
        // A figure has no Markdown: it stays HTML, with the local image.
        "<figure><img src=\"images/1-photo.png\" alt=\"사진\"></figure>",
        &format!("![gone]({old}/missing.png)"),
    ] {
        assert!(first.contains(part), "{part} in:\n{first}");
    }
    assert!(
        !first.contains("script") && !first.contains("srcset") && !first.contains("nofollow"),
        "{first}"
    );
    assert_eq!(
        std::fs::read(site.path().join("posts/첫-글/images/1-photo.png")).unwrap(),
        png(1)
    );
    let unfinished = read(&site, "unfinished/index.md");
    assert!(unfinished.contains("draft = true"), "{unfinished}");
    assert!(unfinished.contains("One line.\n\nTwo."), "{unfinished}");
    assert_eq!(
        read(&site, "taken.md"),
        mine,
        "a slug that exists is never overwritten"
    );

    // Ghost, with its placeholder for the site's address.
    let ghost = r##"{"db":[{"meta":{"exported_on":1600000000000,"version":"5.75.0"},"data":{
        "posts":[{"id":"p1","uuid":"u1","title":"Ghost post","slug":"ghost-post","html":"<p>From Ghost.</p><img src=\"__GHOST_URL__/content/images/ghost.png\">","type":"post","status":"published","published_at":"2022-02-02T02:02:02.000Z","created_at":"2022-02-01T00:00:00.000Z"},
                 {"id":"p2","title":"A page","slug":"a-page","html":"<p>x</p>","type":"page","status":"published","published_at":"2022-02-02T02:02:02.000Z"}],
        "tags":[{"id":"t1","name":"에세이","slug":"essay"},{"id":"t2","name":"#internal","slug":"hash-internal"}],
        "posts_tags":[{"post_id":"p1","tag_id":"t1"},{"post_id":"p1","tag_id":"t2"}]}}]}"##;
    let ghost_path = write(&site, "ghost.json", ghost);
    let report = import_posts(&site, &[ghost_path.to_str().unwrap(), "--base", &old]).await;
    assert_eq!(report["format"], "ghost", "{report}");
    assert_eq!(report["imported"], serde_json::json!(["ghost-post"]));
    assert_eq!(report["images"], 1, "{report}");
    let ghost_post = read(&site, "ghost-post/index.md");
    assert!(ghost_post.contains("tags = [\"에세이\"]"), "{ghost_post}");
    assert!(ghost_post.contains("images/1-ghost.png"), "{ghost_post}");

    // Substack: a ZIP with posts.csv and a file per post.
    let substack = site.path().join("substack.zip");
    zip(
        &substack,
        &[
            (
                "posts.csv",
                "post_id,post_date,is_published,email_sent_at,inbox_sent_at,type,audience,title,subtitle,podcast_url\n\
                 101.letters-from-seoul,2023-03-03T03:03:03.000Z,true,2023-03-03T03:03:03.000Z,,newsletter,everyone,Letters from Seoul,,\n\
                 102.a-thread,2023-03-04T03:03:03.000Z,true,,,thread,everyone,,,\n",
            ),
            (
                "posts/101.letters-from-seoul.html",
                &format!("<p>From Substack.</p><img src=\"{old}/substack/image.png\">"),
            ),
        ],
    );
    let report = import_posts(&site, &[substack.to_str().unwrap()]).await;
    assert_eq!(report["format"], "substack", "{report}");
    assert_eq!(
        report["imported"],
        serde_json::json!(["letters-from-seoul"])
    );
    assert_eq!(report["skipped"].as_array().unwrap().len(), 1, "{report}");
    assert!(std::fs::read(
        site.path()
            .join("posts/letters-from-seoul/images/1-image.png")
    )
    .is_ok());

    // A feed, by URL, as a hosted blog serves it.
    let report = import_posts(&site, &[&format!("{old}/rss")]).await;
    assert_eq!(report["format"], "feed", "{report}");
    assert_eq!(
        report["imported"],
        serde_json::json!(["tistory-post"]),
        "{report}"
    );
    assert_eq!(report["images"], 1, "{report}");
    assert!(read(&site, "tistory-post/index.md").contains("tags = [\"notes\"]"));

    // Importing all of it again changes nothing.
    let before = crate::support::files_below(&site.path().join("posts"));
    for args in [
        vec![wxr_path.to_str().unwrap()],
        vec![ghost_path.to_str().unwrap(), "--base", old.as_str()],
        vec![substack.to_str().unwrap()],
    ] {
        let report = import_posts(&site, &args).await;
        assert!(
            report["imported"].as_array().unwrap().is_empty(),
            "{report}"
        );
    }
    assert_eq!(
        crate::support::files_below(&site.path().join("posts")),
        before
    );

    // The imported posts are in the feeds and the archive, and nobody is mailed.
    let check = site.cli(&["check"]).await;
    assert_eq!(check.code, 0, "{}", check.stderr);
    assert!(site.outbox().is_empty(), "imported posts are never mailed");
    let out = site.path().join("public");
    let built = site.cli(&["build", "--out", out.to_str().unwrap()]).await;
    assert_eq!(built.code, 0, "{}", built.stderr);
    let feed = std::fs::read_to_string(out.join("feed.xml")).unwrap();
    for title in [
        "첫 글 &amp; 그림",
        "Ghost post",
        "Letters from Seoul",
        "Tistory &amp; me",
    ] {
        assert!(feed.contains(title), "{title} in the feed");
    }
    assert!(!feed.contains("Unfinished"), "a draft stays a draft");
    assert!(out.join("posts/첫-글/images/1-photo.png").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_archive_names_where_and_writes_nothing() {
    let site = TestSite::new(None);
    let broken = write(
        &site,
        "broken.xml",
        "<?xml version=\"1.0\"?>\n<rss version=\"2.0\" xmlns:wp=\"http://wordpress.org/export/1.2/\">\n<channel>\n<item><title>x</title>\n</channel>\n</rss>\n",
    );
    let old_ghost = write(
        &site,
        "old-ghost.json",
        r#"{"db":[{"meta":{"version":"1.25.2"},"data":{"posts":[]}}]}"#,
    );
    let whole = site.path().join("whole.zip");
    zip(&whole, &[("posts.csv", "post_id,post_date\n")]);
    let bytes = std::fs::read(&whole).unwrap();
    let cut = site.path().join("cut.zip");
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
    let no_base = write(
        &site,
        "no-base.json",
        r#"{"db":[{"meta":{"version":"5.0.0"},"data":{"posts":[{"id":"1","title":"T","slug":"t","html":"<a href=\"__GHOST_URL__/x/\">x</a>","status":"published","published_at":"2022-01-01T00:00:00.000Z"}]}}]}"#,
    );
    let deep = write(
        &site,
        "deep.xml",
        &format!(
            "<?xml version=\"1.0\"?>\n<rss xmlns:wp=\"http://wordpress.org/export/1.2/\"><channel><item>{}</item></channel></rss>",
            "<wp:a>".repeat(50_000)
        ),
    );
    for (file, says) in [
        (&broken, "line 5"),
        (&old_ghost, "`1.25.2`"),
        (&cut, "cut short"),
        (&no_base, "--base"),
        (&deep, "nested deeper"),
    ] {
        let out = site.cli(&["posts", "import", file.to_str().unwrap()]).await;
        assert_ne!(out.code, 0);
        let name = file.file_name().unwrap().to_str().unwrap();
        assert!(
            out.stderr.contains(name) && out.stderr.contains(says),
            "{name}: {says}: {}",
            out.stderr
        );
    }
    assert!(crate::support::files_below(&site.path().join("posts")).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn leaving_wins_over_an_earlier_row_an_earlier_import_and_a_plain_list() {
    let site = TestSite::new(None);
    // A plain list gives no time: an unsubscribe from the old service later
    // still applies.
    let plain = write(&site, "plain.csv", "email\nz@example.com\n");
    import(&site, &plain, &[]).await;
    let unsub = write(
        &site,
        "unsubscribed_members_export_9.csv",
        "Email Address,OPTIN_TIME,UNSUB_TIME,LEID\nz@example.com,2020-01-01 00:00:00,2024-05-01 00:00:00,1\n",
    );
    let report = import(&site, &unsub, &[]).await;
    assert_eq!(report["left_now"]["unsubscribed"], 1, "{report}");

    // A later row for the same address that says they left outweighs the
    // first, in one file and across batches alike.
    let mut text = String::from("first_name,email_address,state,created_at\n");
    text.push_str("A,dup@example.com,active,2023-01-01T00:00:00Z\n");
    for i in 0..10_050 {
        text.push_str(&format!(
            "R,reader{i}@example.com,active,2023-01-01T00:00:00Z\n"
        ));
    }
    text.push_str("A,DUP@example.com,cancelled,2023-02-01T00:00:00Z\n");
    text.push_str("A,dup@example.com,active,2023-03-01T00:00:00Z\n");
    let kit = write(&site, "kit.csv", &text);
    let report = import(&site, &kit, &[]).await;
    assert_eq!(report["rejected_total"], 1, "{report}");
    assert_eq!(report["rejected"][0]["reason"], "duplicate of row 10053");
    let list = subscribers(&site).await;
    assert_eq!(status(&list, "dup@example.com"), "unsubscribed");

    // A file whose status column this format does not read is refused.
    let odd = write(&site, "odd.csv", "email,unsubscribed\nq@example.com,true\n");
    let out = site
        .cli(&["subscribers", "import", odd.to_str().unwrap()])
        .await;
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("`unsubscribed` looks like a status"),
        "{}",
        out.stderr
    );
    assert!(!subscribers(&site).await.contains_key("q@example.com"));

    // Someone who asked to be forgotten before the list moved in is never added.
    let out = site
        .cli(&["subscribers", "forget", "never@example.com"])
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let list = write(&site, "again.csv", "email\nNever@Example.com\n");
    let report = import(&site, &list, &[]).await;
    assert_eq!(report["kept_away"]["forgotten"], 1, "{report}");
    assert!(!subscribers(&site).await.contains_key("never@example.com"));
}
