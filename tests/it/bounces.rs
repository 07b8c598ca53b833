//! Reports that come back after the relay said 250, through `posthorn bounces
//! ingest` as an MTA's pipe runs it: VERP matching, Message-ID and recipient
//! matching, hard bounces, complaints, auto-replies, forgeries, duplicates,
//! unmatched reports, and a database that is down.

use chrono::{DateTime, Duration, Utc};
use posthorn::delivery::Stop;
use posthorn::domain::SubscriberStatus;
use serde_json::Value;

use crate::support::{post, spawn_with, Action, SmtpServer, TestSite};
use posthorn::App;

/// An RFC 3464 report as Postfix writes it, sent to `to` (the envelope sender
/// of the original), about `recipient`, returning the original's headers.
pub(crate) fn dsn(
    to: &str,
    recipient: &str,
    status: &str,
    diagnostic: &str,
    returned: &str,
) -> Vec<u8> {
    format!(
        "From: MAILER-DAEMON@relay.example.net (Mail Delivery System)\r\n\
         To: {to}\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         Message-ID: <{}@relay.example.net>\r\n\
         Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\
         \r\n\
         --B\r\n\
         Content-Type: text/plain\r\n\
         \r\n\
         This is the mail system at host relay.example.net.\r\n\
         <{recipient}>: host mx.example.org said: {diagnostic} (in reply to RCPT TO command)\r\n\
         \r\n\
         --B\r\n\
         Content-Type: message/delivery-status\r\n\
         \r\n\
         Reporting-MTA: dns; relay.example.net\r\n\
         \r\n\
         Final-Recipient: rfc822; {recipient}\r\n\
         Action: failed\r\n\
         Status: {status}\r\n\
         Diagnostic-Code: smtp; {diagnostic}\r\n\
         \r\n\
         --B\r\n\
         Content-Type: text/rfc822-headers\r\n\
         \r\n\
         {returned}\r\n\
         --B--\r\n",
        recipient.replace('@', ".")
    )
    .into_bytes()
}

/// An RFC 5965 complaint about `recipient` returning the original's headers.
pub(crate) fn arf(recipient: &str, returned: &str) -> Vec<u8> {
    format!(
        "From: feedback@fbl.example.org\r\n\
         To: abuse@example.com\r\n\
         Subject: complaint\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=feedback-report; boundary=\"F\"\r\n\
         \r\n\
         --F\r\n\
         Content-Type: text/plain\r\n\
         \r\n\
         This is an email abuse report.\r\n\
         --F\r\n\
         Content-Type: message/feedback-report\r\n\
         \r\n\
         Feedback-Type: abuse\r\n\
         User-Agent: fbl/1.0\r\n\
         Version: 1\r\n\
         Original-Rcpt-To: {recipient}\r\n\
         \r\n\
         --F\r\n\
         Content-Type: text/rfc822-headers\r\n\
         \r\n\
         {returned}\r\n\
         --F--\r\n"
    )
    .into_bytes()
}

/// The headers of a message as the SMTP server got it.
pub(crate) fn headers_of(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data);
    text.split("\r\n\r\n").next().unwrap_or("").to_string()
}

fn json(out: &crate::support::CliOutput) -> Value {
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", out.stdout, out.stderr))
}

/// A site with VERP on (`bounces.return_path`) that has sent its first letter
/// to each of `readers`; the clock reading it was sent at, last.
async fn sent_to(readers: &[&str]) -> (SmtpServer, TestSite, App, DateTime<Utc>) {
    let (smtp, site, app) = spawn_with(|site| {
        site.append_config("\n[bounces]\nreturn_path = \"bounces@bounce.example.com\"\n")
    })
    .await;
    smtp.set_rule(|_| Action::Accept);
    site.add_subscribers(&app, readers).await;
    let now = site.new_post(&app, "p.md", "첫 편지").await;
    app.tick().run_once(now, Stop::default()).await.unwrap();
    (smtp, site, app, now)
}

#[tokio::test(flavor = "multi_thread")]
async fn reports_change_exactly_the_deliveries_they_name() {
    let readers = [
        "gone@example.org",
        "fine@example.org",
        "annoyed@example.org",
    ];
    let (smtp, site, app, now) = sent_to(&readers).await;
    let sent = smtp.messages();
    assert_eq!(sent.len(), 3);
    let to = |who: &str| {
        sent.iter()
            .find(|m| m.rcpt_to == [who.to_string()])
            .expect("a message to each reader")
    };
    // VERP: the envelope sender names the delivery; the header From is unchanged.
    let gone = to("gone@example.org");
    assert!(gone.mail_from.starts_with("bounces+"), "{}", gone.mail_from);
    assert!(gone.mail_from.ends_with("@bounce.example.com"));
    assert!(gone.mail_from.split('@').next().unwrap().len() <= 64);
    assert!(headers_of(&gone.data).contains("From: Jerry <essays@example.com>"));

    // A hard bounce to the VERP address: that delivery and that reader only.
    let report = dsn(
        &gone.mail_from.to_uppercase(), // some MTAs change the case of local parts
        "gone@example.org",
        "5.1.1",
        "550 5.1.1 <gone@example.org>: Recipient address rejected: User unknown",
        &headers_of(&gone.data),
    );
    let out = site.cli_with_input(&["bounces", "ingest"], &report).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let log = site.log_by_email(&app, "p").await;
    assert_eq!(log["gone@example.org"].status, "bounced");
    assert!(log["gone@example.org"]
        .last_error
        .as_deref()
        .unwrap()
        .contains("5.1.1"));
    assert_eq!(log["fine@example.org"].status, "sent");
    assert_eq!(
        site.status_of(&app, "gone@example.org").await,
        Some(SubscriberStatus::Bounced)
    );

    // The same report again counts once.
    let again = site.cli_with_input(&["bounces", "ingest"], &report).await;
    assert_eq!(again.code, 0);
    assert!(again.stdout.contains("recorded before"), "{}", again.stdout);
    let list = json(&site.cli(&["bounces", "list", "--json"]).await);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["effect"], "bounced");
    assert_eq!(list[0]["issue"], "p");
    let why = "userunknown".to_string();
    assert_eq!(list[0]["reason"], why.as_str(), "{list}");

    // The history: the attempt with the relay's 250, then the report.
    let history = json(
        &site
            .cli(&["deliveries", "p", "--history", "gone@example.org", "--json"])
            .await,
    );
    let kinds: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["attempt", "bounce"], "{history}");
    assert_eq!(history[0]["reason"], Value::Null, "an attempt is no report");
    assert_eq!(history[1]["reason"], why.as_str(), "{history}");
    let text = site.cli(&["deliveries", "p"]).await.stdout;
    assert!(
        text.contains("bounced") && text.contains("User unknown"),
        "{text}"
    );

    // A forged token (right shape, wrong MAC) changes nothing.
    let fine = to("fine@example.org");
    let (local, domain) = fine.mail_from.split_once('@').unwrap();
    let forged_from = format!("{}0000000000000000@{domain}", &local[..local.len() - 16]);
    let forged = dsn(
        &forged_from,
        "fine@example.org",
        "5.1.1",
        "550 5.1.1 User unknown",
        "Subject: x",
    );
    let out = site.cli_with_input(&["bounces", "ingest"], &forged).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        site.log_by_email(&app, "p").await["fine@example.org"].status,
        "sent"
    );
    assert_eq!(
        site.status_of(&app, "fine@example.org").await,
        Some(SubscriberStatus::Active)
    );

    // An auto-reply is never a bounce.
    let vacation =
        b"From: fine@example.org\r\nTo: essays@example.com\r\nSubject: Away until May 5\r\n\
        Auto-Submitted: auto-replied\r\n\r\nI am away; I will read your essay later.\r\n";
    let out = site.cli_with_input(&["bounces", "ingest"], vacation).await;
    assert_eq!(out.code, 0);
    assert_eq!(
        site.log_by_email(&app, "p").await["fine@example.org"].status,
        "sent"
    );

    // A report about a delivery posthorn never made is kept, unmatched.
    let stranger = dsn(
        "postmaster@example.com",
        "stranger@example.net",
        "5.1.1",
        "550 5.1.1 unknown",
        "Subject: ?",
    );
    assert_eq!(
        site.cli_with_input(&["bounces", "ingest"], &stranger)
            .await
            .code,
        0
    );

    // A complaint, tied by the Message-ID in the returned headers: unsubscribed at
    // once, with the reason, and the next issue skips the reader.
    let annoyed = to("annoyed@example.org");
    let complaint = arf("annoyed@example.org", &headers_of(&annoyed.data));
    let out = site
        .cli_with_input(&["bounces", "ingest"], &complaint)
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        site.log_by_email(&app, "p").await["annoyed@example.org"].status,
        "complained"
    );
    assert_eq!(
        site.status_of(&app, "annoyed@example.org").await,
        Some(SubscriberStatus::Unsubscribed)
    );

    let list = json(&site.cli(&["bounces", "list", "--json"]).await);
    let effects: Vec<(&str, &str)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["kind"].as_str().unwrap(), r["effect"].as_str().unwrap()))
        .collect();
    assert_eq!(
        effects,
        [
            ("complaint", "complained"),
            ("bounce", "unmatched"),
            ("bounce", "forged"),
            ("bounce", "bounced")
        ]
    );
    assert_eq!(list[0]["reason"], "feedback", "{list}");
    let text = site.cli(&["bounces", "list"]).await.stdout;
    assert!(
        text.contains("REASON") && text.contains("feedback") && text.contains(&why),
        "{text}"
    );
    let status = json(&site.cli(&["status", "--json"]).await);
    let rate = status[0]["complaint_rate"].as_f64().unwrap();
    assert!((rate - 100.0 / 3.0).abs() < 0.01, "{status}");
    assert_eq!(status[0]["counts"]["complained"], 1);
    assert_eq!(status[0]["counts"]["bounced"], 1);
    assert!(site.cli(&["status"]).await.stdout.contains("0.3 %"));

    let created = app.ledger().created_at().await.unwrap();
    site.write_post(
        "q.md",
        &post("둘째 편지", created + Duration::seconds(2), "본문"),
    );
    smtp.clear();
    app.tick()
        .run_once(now + Duration::minutes(1), Stop::default())
        .await
        .unwrap();
    let got: Vec<String> = smtp
        .messages()
        .iter()
        .flat_map(|m| m.rcpt_to.clone())
        .collect();
    assert_eq!(
        got,
        ["fine@example.org"],
        "only the reader who stayed gets the next issue"
    );
}

#[tokio::test]
async fn ingest_asks_the_mta_to_retry_when_the_database_is_down_and_refuses_what_is_not_mail() {
    let site = TestSite::new(None);
    let report = dsn(
        "postmaster@example.com",
        "a@example.net",
        "5.1.1",
        "550 5.1.1 unknown",
        "Subject: ?",
    );
    let not_mail = site
        .cli_with_input(&["bounces", "ingest"], b"\x00\x01 not mail at all")
        .await;
    assert_eq!(not_mail.code, 65, "{}", not_mail.stderr);
    assert!(
        not_mail.stderr.contains("not a mail message"),
        "{}",
        not_mail.stderr
    );

    // Nothing listens on port 9: the database is down.
    std::fs::write(
        site.path().join("down.toml"),
        std::fs::read_to_string(site.config_path())
            .unwrap()
            .lines()
            .map(|l| {
                if l.starts_with("url = ") {
                    "url = \"postgres://postgres@127.0.0.1:9/none\""
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    let down = crate::support::TestSite::run_bin_with_input(
        &[
            "--config",
            site.path().join("down.toml").to_str().unwrap(),
            "bounces",
            "ingest",
        ],
        &report,
    )
    .await;
    assert_eq!(down.code, 75, "EX_TEMPFAIL: {}", down.stderr);
    assert!(down.stderr.contains("retries"), "{}", down.stderr);
}

/// An MTA runs several pipes at once: every report is recorded, none is turned
/// back with "database is locked".
#[tokio::test(flavor = "multi_thread")]
async fn reports_piped_at_the_same_time_are_all_recorded() {
    let readers: Vec<String> = (0..6).map(|i| format!("gone{i}@example.org")).collect();
    let refs: Vec<&str> = readers.iter().map(String::as_str).collect();
    let (smtp, site, app, _) = sent_to(&refs).await;
    let reports: Vec<Vec<u8>> = smtp
        .messages()
        .iter()
        .map(|m| {
            dsn(
                &m.mail_from,
                &m.rcpt_to[0],
                "5.1.1",
                "550 5.1.1 User unknown",
                &headers_of(&m.data),
            )
        })
        .collect();
    let runs = reports
        .iter()
        .map(|r| site.cli_with_input(&["bounces", "ingest"], r));
    for out in futures_util::future::join_all(runs).await {
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    }
    let log = site.log_by_email(&app, "p").await;
    assert!(log.values().all(|r| r.status == "bounced"), "{log:?}");
    app.close().await;
}

/// Every reader sees their own Message-ID. A report acts only through a VERP
/// token or a Message-ID whose MAC checks, and only for the recipient it names:
/// a reader who edits their own Message-ID, or writes a report about someone
/// else, changes nobody, and the report is kept and listed.
#[tokio::test(flavor = "multi_thread")]
async fn reports_that_prove_nothing_change_nobody() {
    let (smtp, site, app, _) = sent_to(&["victim@example.org", "mallory@example.org"]).await;
    let sent = smtp.messages();
    let to = |who: &str| {
        sent.iter()
            .find(|m| m.rcpt_to == [who.to_string()])
            .expect("a message to each reader")
    };
    let own = to("mallory@example.org");
    let own_headers = headers_of(&own.data);
    let victim = site.subscriber(&app, "victim@example.org").await.unwrap();
    let mallory = site.subscriber(&app, "mallory@example.org").await.unwrap();
    // Mallory's Message-ID with the victim's id in it: the MAC no longer checks.
    let moved_headers =
        own_headers.replace(&format!(".{}.", mallory.id), &format!(".{}.", victim.id));
    assert_ne!(moved_headers, own_headers, "{own_headers}");
    let ingest = |raw: Vec<u8>| {
        let site = &site;
        async move {
            let out = site.cli_with_input(&["bounces", "ingest"], &raw).await;
            assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
        }
    };
    let hard = "550 5.1.1 <victim@example.org>: User unknown";
    ingest(dsn(
        "postmaster@example.com",
        "victim@example.org",
        "5.1.1",
        hard,
        &moved_headers,
    ))
    .await;
    // A complaint that names the victim and carries no mark of ours.
    ingest(arf("victim@example.org", "Subject: 첫 편지")).await;
    // Mallory's own, true Message-ID, in a report about the victim.
    ingest(dsn(
        "postmaster@example.com",
        "victim@example.org",
        "5.1.1",
        hard,
        &own_headers,
    ))
    .await;
    ingest(arf("victim@example.org", &own_headers)).await;
    // Mallory's own VERP address, in a report about the victim.
    ingest(dsn(
        &own.mail_from,
        "victim@example.org",
        "5.1.1",
        hard,
        "Subject: x",
    ))
    .await;

    let log = site.log_by_email(&app, "p").await;
    assert_eq!(log["victim@example.org"].status, "sent");
    assert_eq!(log["mallory@example.org"].status, "sent");
    for who in ["victim@example.org", "mallory@example.org"] {
        assert_eq!(
            site.status_of(&app, who).await,
            Some(SubscriberStatus::Active),
            "{who}"
        );
    }
    let list = json(&site.cli(&["bounces", "list", "--json"]).await);
    let effects: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["effect"].as_str().unwrap())
        .collect();
    assert_eq!(effects, ["unmatched"; 5], "every report is kept: {list}");

    // The victim's own report, with the headers their message really had, acts.
    let real = dsn(
        "postmaster@example.com",
        "victim@example.org",
        "5.1.1",
        hard,
        &headers_of(&to("victim@example.org").data),
    );
    ingest(real).await;
    assert_eq!(
        site.log_by_email(&app, "p").await["victim@example.org"].status,
        "bounced"
    );
    assert_eq!(
        site.status_of(&app, "mallory@example.org").await,
        Some(SubscriberStatus::Active)
    );
    app.close().await;
}

/// `bounces parse` says why each recipient failed, from the reader's taxonomy,
/// as text and as JSON (one object per line for several files).
#[tokio::test]
async fn parse_gives_a_reason_for_each_recipient() {
    let site = TestSite::new(None);
    let bounce = site.path().join("bounce.eml");
    std::fs::write(
        &bounce,
        dsn(
            "postmaster@example.com",
            "gone@example.org",
            "5.1.1",
            "550 5.1.1 <gone@example.org>: Recipient address rejected: User unknown",
            "Subject: x",
        ),
    )
    .unwrap();
    let complaint = site.path().join("complaint.eml");
    std::fs::write(&complaint, arf("annoyed@example.org", "Subject: x")).unwrap();
    let (bounce, complaint) = (
        bounce.display().to_string(),
        complaint.display().to_string(),
    );

    let out = site.cli(&["bounces", "parse", &bounce, "--json"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let parsed = json(&out);
    let recipients = parsed["recipients"].as_array().unwrap();
    assert_eq!(recipients.len(), 1, "{parsed}");
    let why = "userunknown";
    assert_eq!(recipients[0]["reason"], why, "{parsed}");

    let out = site
        .cli(&["bounces", "parse", &bounce, &complaint, "--json"])
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    assert_eq!(lines[0]["recipients"][0]["reason"], why);
    assert_eq!(lines[1]["kind"], "complaint");
    assert_eq!(
        lines[1]["recipients"][0]["reason"], "feedback",
        "{}",
        out.stdout
    );

    let text = site.cli(&["bounces", "parse", &bounce]).await.stdout;
    assert!(text.contains("REASON") && text.contains(why), "{text}");
}
