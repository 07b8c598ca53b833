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
        "mailchimp (`Email Address`)",
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
