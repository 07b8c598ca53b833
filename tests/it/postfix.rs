//! Postfix itself, from Debian, as the relay: posthorn sends through it with VERP
//! on; its next hop refuses some readers with 550 5.1.1 and some with 552 5.2.2;
//! Postfix writes real DSNs to the VERP addresses and routes them back through a
//! `pipe` transport to `posthorn bounces ingest`, as a site would configure it.
//!
//! Needs /usr/sbin/postfix (Debian's `postfix`) and root; without them the build
//! script warns and `cargo test` lists the test as ignored, and with
//! REQUIRE_POSTFIX=1 (as CI sets) the build fails instead.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use posthorn::delivery::Stop;
use posthorn::domain::SubscriberStatus;

use crate::support::needs::POSTFIX;
use crate::support::{available, free_port, Action, SmtpServer, TestSite};

/// A Postfix instance of its own in `dir`, stopped when dropped.
struct Postfix {
    dir: PathBuf,
}

impl Postfix {
    fn start(dir: &Path, port: u16, next_hop: u16, ingest: &str) -> Postfix {
        use std::os::unix::fs::PermissionsExt;
        for sub in ["queue", "data"] {
            std::fs::create_dir_all(dir.join(sub)).expect("postfix dirs");
        }
        // A temporary folder is root's alone (0700); Postfix's daemons run as
        // `postfix` and must reach the queue, and own their data directory.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
            .expect("chmod postfix dir");
        let status = Command::new("chown")
            .args(["postfix", dir.join("data").to_str().expect("utf-8 path")])
            .status()
            .expect("chown");
        assert!(status.success(), "chown postfix data");
        let d = dir.display();
        let main_cf = format!(
            "compatibility_level = 3.6\n\
             queue_directory = {d}/queue\n\
             data_directory = {d}/data\n\
             maillog_file = {d}/maillog\n\
             maillog_file_prefixes = {d}\n\
             myhostname = relay.posthorn.test\n\
             mydomain = posthorn.test\n\
             myorigin = $myhostname\n\
             mydestination =\n\
             inet_interfaces = 127.0.0.1\n\
             inet_protocols = ipv4\n\
             mynetworks = 127.0.0.0/8\n\
             smtpd_relay_restrictions = permit_mynetworks, reject\n\
             relayhost = [127.0.0.1]:{next_hop}\n\
             smtp_dns_support_level = disabled\n\
             transport_maps = inline:{{ bounce.posthorn.test=posthorn: }}\n\
             alias_maps =\n\
             alias_database =\n\
             local_recipient_maps =\n\
             notify_classes =\n\
             delay_warning_time = 0\n\
             smtp_connect_timeout = 5s\n\
             posthorn_destination_recipient_limit = 1\n\
             queue_run_delay = 1s\n\
             minimal_backoff_time = 1s\n\
             maximal_backoff_time = 2s\n"
        );
        std::fs::write(dir.join("main.cf"), main_cf).expect("main.cf");
        // Debian's services, without chroot (the queue is a temporary folder).
        let mut master = format!("127.0.0.1:{port} inet n - n - - smtpd\n");
        for (name, kind, private, unprivileged, wakeup, limit, command) in [
            ("pickup", "unix", "n", "-", "60", "1", "pickup"),
            ("cleanup", "unix", "n", "-", "-", "0", "cleanup"),
            ("qmgr", "unix", "n", "-", "300", "1", "qmgr"),
            ("rewrite", "unix", "-", "-", "-", "-", "trivial-rewrite"),
            ("bounce", "unix", "-", "-", "-", "0", "bounce"),
            ("defer", "unix", "-", "-", "-", "0", "bounce"),
            ("trace", "unix", "-", "-", "-", "0", "bounce"),
            ("verify", "unix", "-", "-", "-", "1", "verify"),
            ("flush", "unix", "n", "-", "1000?", "0", "flush"),
            ("proxymap", "unix", "-", "-", "-", "-", "proxymap"),
            ("smtp", "unix", "-", "-", "-", "-", "smtp"),
            ("relay", "unix", "-", "-", "-", "-", "smtp"),
            ("showq", "unix", "n", "-", "-", "-", "showq"),
            ("error", "unix", "-", "-", "-", "-", "error"),
            ("retry", "unix", "-", "-", "-", "-", "error"),
            ("discard", "unix", "-", "-", "-", "-", "discard"),
            ("anvil", "unix", "-", "-", "-", "1", "anvil"),
            ("scache", "unix", "-", "-", "-", "1", "scache"),
            ("postlog", "unix-dgram", "n", "-", "-", "1", "postlogd"),
        ] {
            master.push_str(&format!(
                "{name} {kind} {private} {unprivileged} n {wakeup} {limit} {command}\n"
            ));
        }
        master.push_str(&format!(
            "posthorn unix - n n - - pipe\n  flags=Rq user=nobody argv={ingest}\n"
        ));
        std::fs::write(dir.join("master.cf"), master).expect("master.cf");
        let postfix = Postfix {
            dir: dir.to_path_buf(),
        };
        postfix.run(&["check"]);
        postfix.run(&["start"]);
        postfix
    }

    fn run(&self, args: &[&str]) {
        let out = Command::new("/usr/sbin/postfix")
            .arg("-c")
            .arg(&self.dir)
            .args(args)
            .output()
            .expect("run postfix");
        assert!(
            out.status.success(),
            "postfix {args:?}: {}{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("maillog")).unwrap_or_default()
    }

    /// Waits (at most a minute) until `n` messages went out through the pipe.
    async fn wait_for_pipe(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let log = self.log();
            let piped = log
                .lines()
                .filter(|l| l.contains("relay=posthorn") && l.contains("status=sent"))
                .count();
            if piped >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Postfix piped {piped} of {n} reports:\n{log}"
            );
            // Postfix is another process: its log is the only step to watch.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("/usr/sbin/postfix")
            .arg("-c")
            .arg(&self.dir)
            .arg("stop")
            .output();
    }
}

#[cfg_attr(no_postfix, ignore = "needs Postfix and root: apt-get install postfix")]
#[tokio::test(flavor = "multi_thread")]
async fn postfix_returns_real_dsns_through_a_pipe_to_the_deliveries_they_name() {
    if !available(&POSTFIX) {
        return;
    }
    let next_hop = SmtpServer::start().await;
    next_hop.set_rule(|rcpt| match rcpt.split('@').next().unwrap_or("") {
        l if l.starts_with("unknown") => Action::RcptReply(
            550,
            "5.1.1 <x>: Recipient address rejected: User unknown".into(),
        ),
        l if l.starts_with("full") => Action::RcptReply(552, "5.2.2 Mailbox full".into()),
        _ => Action::Accept,
    });
    let port = free_port();
    let site = TestSite::new(Some(port));
    if site.on_postgres() {
        eprintln!("SKIPPED on PostgreSQL: the SQLite run covers the relay");
        return;
    }
    site.append_config("\n[bounces]\nreturn_path = \"bounces@bounce.posthorn.test\"\n");
    let app = site.app().await;
    let readers = [
        "unknown1@example.org",
        "unknown2@example.org",
        "full1@example.org",
        "ok1@example.org",
        "ok2@example.org",
    ];
    site.add_subscribers(&app, &readers).await;
    let now = site.new_post(&app, "p.md", "첫 편지").await;

    let spool = tempfile::tempdir().expect("postfix dir");
    let ingest = format!(
        "{} --config {} bounces ingest",
        env!("CARGO_BIN_EXE_posthorn"),
        site.config_path().display()
    );
    let postfix = Postfix::start(spool.path(), port, next_hop.port, &ingest);
    let report = app.tick().run_once(now, Stop::default()).await.unwrap();
    assert_eq!(
        report.deliveries.sent, 5,
        "the relay takes every message: {report:?}"
    );
    app.close().await;
    // The pipe runs as `nobody`: it must be able to write the SQLite file.
    let status = Command::new("chown")
        .args(["-R", "nobody", site.path().to_str().unwrap()])
        .status()
        .expect("chown");
    assert!(status.success());

    postfix.wait_for_pipe(3).await;
    assert_eq!(next_hop.count_for("ok1@example.org"), 1);

    let app = site.app().await;
    let log = site.log_by_email(&app, "p").await;
    for r in [
        "unknown1@example.org",
        "unknown2@example.org",
        "full1@example.org",
    ] {
        assert_eq!(
            log[r].status,
            "bounced",
            "{r}: {:?}\n{}",
            log[r],
            postfix.log()
        );
    }
    for r in ["ok1@example.org", "ok2@example.org"] {
        assert_eq!(log[r].status, "sent", "{r}");
    }
    assert!(
        log["unknown1@example.org"]
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("User unknown"),
        "the remote server's words: {:?}",
        log["unknown1@example.org"]
    );
    assert_eq!(
        site.status_of(&app, "unknown1@example.org").await,
        Some(SubscriberStatus::Bounced)
    );
    assert_eq!(
        site.status_of(&app, "unknown2@example.org").await,
        Some(SubscriberStatus::Bounced)
    );
    assert_eq!(
        site.status_of(&app, "full1@example.org").await,
        Some(SubscriberStatus::Active),
        "a full mailbox is soft: one is not five in a row"
    );
    let list = app.bounces().list(10).await.unwrap();
    assert!(
        list.iter().all(|r| r.matched_by.as_deref() == Some("verp")),
        "{list:?}"
    );
    let full = list
        .iter()
        .find(|r| r.recipient.as_deref() == Some("full1@example.org"))
        .unwrap();
    assert!(
        !full.hard && full.status.as_deref() == Some("5.2.2"),
        "{full:?}"
    );
    app.close().await;
    drop(postfix);
}
