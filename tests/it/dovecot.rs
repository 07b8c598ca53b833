//! The bounce mailbox over IMAP against a real Dovecot (Debian's `dovecot-imapd`),
//! started by the test with a TLS certificate of its own: reports are recorded
//! and moved to `posthorn/processed`, a reader's reply stays where it was,
//! unread, and a broken message is set aside in `posthorn/unparsed`.
//!
//! Needs /usr/sbin/dovecot, openssl and root; without them the build script warns
//! and `cargo test` lists the test as ignored, and with REQUIRE_DOVECOT=1 (as CI
//! sets) the build fails instead.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use posthorn::delivery::Stop;
use posthorn::domain::SubscriberStatus;

use crate::bounces::{arf, dsn, headers_of};
use crate::support::needs::DOVECOT;
use crate::support::{available, free_port, harness, openssl, Action, TestSite};

/// A CA, and a certificate for 127.0.0.1 signed by it (a self-signed CA used as
/// the server's own certificate is refused by rustls, rightly).
fn certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=posthorn test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
        b"",
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "key.pem",
            "-out",
            "server.csr",
        ],
        b"",
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName = IP:127.0.0.1\nbasicConstraints = CA:FALSE\n",
    )
    .expect("ext.cnf");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "cert.pem",
        ],
        b"",
    );
}

/// A Dovecot of its own in `dir`, serving one Maildir as `reports` over IMAPS;
/// stopped when dropped.
struct Dovecot {
    dir: PathBuf,
    child: Child,
    port: u16,
}

impl Dovecot {
    fn start(dir: &Path) -> Dovecot {
        use std::os::unix::fs::PermissionsExt;
        // Dovecot's own users must reach its run folder inside the temp folder.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        certificates(dir);
        for sub in ["run", "state", "mail/cur", "mail/new", "mail/tmp"] {
            std::fs::create_dir_all(dir.join(sub)).expect("dovecot dirs");
        }
        chown_mail(dir);
        let port = free_port();
        let d = dir.display();
        let conf = format!(
            "base_dir = {d}/run\n\
             state_dir = {d}/state\n\
             log_path = {d}/dovecot.log\n\
             protocols = imap\n\
             listen = 127.0.0.1\n\
             ssl = required\n\
             ssl_cert = <{d}/cert.pem\n\
             ssl_key = <{d}/key.pem\n\
             auth_mechanisms = plain login\n\
             mail_location = maildir:{d}/mail\n\
             passdb {{\n  driver = static\n  args = password=s3cret\n}}\n\
             userdb {{\n  driver = static\n  args = uid=nobody gid=nogroup home={d}/mail\n}}\n\
             service imap-login {{\n  inet_listener imap {{\n    port = 0\n  }}\n  \
               inet_listener imaps {{\n    port = {port}\n    ssl = yes\n  }}\n}}\n\
             service stats {{\n  unix_listener stats-reader {{\n    mode = 0666\n  }}\n  \
               unix_listener stats-writer {{\n    mode = 0666\n  }}\n}}\n"
        );
        std::fs::write(dir.join("dovecot.conf"), conf).expect("dovecot.conf");
        let child = Command::new("/usr/sbin/dovecot")
            .arg("-F")
            .arg("-c")
            .arg(dir.join("dovecot.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dovecot");
        let dovecot = Dovecot {
            dir: dir.to_path_buf(),
            child,
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "Dovecot did not listen within 30 s:\n{}",
                dovecot.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        dovecot
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dovecot.log")).unwrap_or_default()
    }

    /// Delivers a message into the Maildir as an MTA would (unread, in `new/`).
    fn deliver(&self, name: &str, raw: &[u8]) {
        let path = self
            .dir
            .join("mail/new")
            .join(format!("{name}.posthorn-test"));
        std::fs::write(&path, raw).expect("deliver");
        chown_mail(&self.dir);
    }

    /// The messages of a folder (`None`: the inbox), each with its flags
    /// from the Maildir file name (`S` = seen).
    fn folder(&self, name: Option<&str>) -> Vec<(String, Vec<u8>)> {
        let base = match name {
            None => self.dir.join("mail"),
            Some(n) => self.dir.join("mail").join(format!(".{n}")),
        };
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            for entry in std::fs::read_dir(base.join(sub))
                .into_iter()
                .flatten()
                .flatten()
            {
                let file = entry.file_name().to_string_lossy().into_owned();
                out.push((file, std::fs::read(entry.path()).expect("read message")));
            }
        }
        out
    }
}

/// The Maildir belongs to the mail user Dovecot serves it as.
fn chown_mail(dir: &Path) {
    let status = Command::new("chown")
        .args(["-R", "nobody:nogroup"])
        .arg(dir.join("mail"))
        .status()
        .expect("chown");
    assert!(status.success(), "chown the Maildir");
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    String::from_utf8_lossy(haystack).contains(needle)
}

#[cfg_attr(
    no_dovecot,
    ignore = "needs Dovecot and root: apt-get install dovecot-imapd"
)]
#[tokio::test(flavor = "multi_thread")]
async fn the_mailbox_is_polled_reports_filed_and_replies_left_unread() {
    if !available(&DOVECOT) {
        return;
    }
    let (smtp, site) = harness::site().await;
    smtp.set_rule(|_| Action::Accept);
    if site.on_postgres() {
        eprintln!("SKIPPED on PostgreSQL: the SQLite run covers the mailbox");
        return;
    }
    let spool = tempfile::tempdir().expect("dovecot dir");
    let dovecot = Dovecot::start(spool.path());
    site.append_config(&format!(
        "\n[bounces]\nreturn_path = \"bounces@bounce.example.com\"\n\
         imap_url = \"imaps://reports%40example.com@127.0.0.1:{}/INBOX\"\n\
         imap_password = \"s3cret\"\nimap_ca_file = \"{}\"\n",
        dovecot.port,
        spool.path().join("ca.pem").display()
    ));
    let app = site.app().await;
    site.add_subscribers(
        &app,
        &[
            "gone@example.org",
            "annoyed@example.org",
            "fine@example.org",
        ],
    )
    .await;
    let now = site.new_post(&app, "p.md", "첫 편지").await;
    let first = app.tick().run_once(now, Stop::default()).await.unwrap();
    assert_eq!(first.deliveries.sent, 3);
    let polled = first.bounces.expect("a poll each tick");
    assert_eq!(polled.error, None, "{}", dovecot.log());
    assert_eq!(polled.processed + polled.unparsed + polled.left, 0);

    let sent = smtp.messages();
    let to = |who: &str| {
        sent.iter()
            .find(|m| m.rcpt_to == [who.to_string()])
            .expect("a message to each reader")
    };
    let gone = to("gone@example.org");
    dovecot.deliver(
        "1-bounce",
        &dsn(
            &gone.mail_from,
            "gone@example.org",
            "5.1.1",
            "550 5.1.1 <gone@example.org>: Recipient address rejected: User unknown",
            &headers_of(&gone.data),
        ),
    );
    dovecot.deliver(
        "2-reply",
        "From: Fine Reader <fine@example.org>\r\nTo: bounces@bounce.example.com\r\n\
          Subject: Re: 첫 편지\r\nMessage-ID: <reply-1@example.org>\r\n\r\n\
          Thank you for this essay.\r\n"
            .as_bytes(),
    );
    dovecot.deliver("3-broken", b"\x00\x01\x02 not mail at all \xff\xfe");
    dovecot.deliver(
        "4-complaint",
        &arf(
            "annoyed@example.org",
            &headers_of(&to("annoyed@example.org").data),
        ),
    );

    let later = now + chrono::Duration::minutes(1);
    let second = app.tick().run_once(later, Stop::default()).await.unwrap();
    let polled = second.bounces.expect("a poll each tick");
    assert_eq!(polled.error, None, "{}", dovecot.log());
    assert_eq!(
        (polled.processed, polled.unparsed, polled.left),
        (2, 1, 1),
        "{polled:?}"
    );

    // The reports did what they say.
    let log = site.log_by_email(&app, "p").await;
    assert_eq!(log["gone@example.org"].status, "bounced");
    assert_eq!(log["annoyed@example.org"].status, "complained");
    assert_eq!(log["fine@example.org"].status, "sent");
    assert_eq!(
        site.status_of(&app, "gone@example.org").await,
        Some(SubscriberStatus::Bounced)
    );
    assert_eq!(
        site.status_of(&app, "annoyed@example.org").await,
        Some(SubscriberStatus::Unsubscribed)
    );

    // Filed: the reports in posthorn/processed, the broken one in posthorn/unparsed,
    // the reply untouched and unread in the inbox. Nothing deleted.
    let inbox = dovecot.folder(None);
    assert_eq!(inbox.len(), 1, "only the reply stays: {inbox:?}");
    let (name, raw) = &inbox[0];
    assert!(contains(raw, "Thank you for this essay"));
    let flags = name.rsplit_once(":2,").map_or("", |(_, f)| f);
    assert!(!flags.contains('S'), "the reply must stay unread: {name}");
    let processed = dovecot.folder(Some("posthorn.processed"));
    assert_eq!(processed.len(), 2, "{processed:?}");
    assert!(processed.iter().any(|(_, m)| contains(m, "5.1.1")));
    assert!(processed
        .iter()
        .any(|(_, m)| contains(m, "feedback-report")));
    let unparsed = dovecot.folder(Some("posthorn.unparsed"));
    assert_eq!(unparsed.len(), 1, "{unparsed:?}");
    assert!(contains(&unparsed[0].1, "not mail at all"));

    // The next poll reads nothing again: the reply is not read twice.
    let third = app
        .tick()
        .run_once(later + chrono::Duration::minutes(1), Stop::default())
        .await
        .unwrap();
    let polled = third.bounces.expect("a poll each tick");
    assert_eq!(
        (polled.processed, polled.unparsed, polled.left, polled.error),
        (0, 0, 0, None)
    );
    app.close().await;
}

#[tokio::test]
async fn a_mailbox_that_is_down_is_reported_and_the_tick_goes_on() {
    let site = TestSite::new(None);
    let port = free_port();
    site.append_config(&format!(
        "\n[bounces]\nimap_url = \"imaps://reports@127.0.0.1:{port}/INBOX\"\nimap_password = \"x\"\n"
    ));
    let app = site.app().await;
    let now = site.new_post(&app, "p.md", "첫 편지").await;
    let report = app.tick().run_once(now, Stop::default()).await.unwrap();
    let polled = report.bounces.expect("a poll each tick");
    let error = polled.error.expect("an error");
    assert!(error.contains("cannot connect"), "{error}");
    assert!(!report.issues.is_empty(), "the rest of the tick ran");
    app.close().await;
}

#[tokio::test]
async fn plain_imap_is_refused_at_start() {
    let site = TestSite::new(None);
    site.append_config(
        "\n[bounces]\nimap_url = \"imap://reports@127.0.0.1:143/INBOX\"\nimap_password = \"x\"\n",
    );
    let out = site.cli(&["check"]).await;
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("imaps://"), "{}", out.stderr);
}
