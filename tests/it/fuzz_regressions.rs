//! Every input the fuzz targets (fuzz/fuzz_targets) ever crashed or hung on,
//! committed under tests/data/fuzz/<target>/, run through the same code as the
//! target, with a time limit: each must now give a result or an error, quickly.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use posthorn::bounces::{self, Tracks};
use posthorn::config::Config;
use posthorn::links::Links;
use posthorn::posts::{self, upstream};
use posthorn::tokens::Tokens;
use url::Url;

use crate::message_checks;
use crate::support::TestSite;

/// The fuzzers call an input that takes 10 s a hang, in a build slowed by
/// their instrumentation; an input of at most 64 KiB that is read in linear
/// time takes milliseconds here.
const LIMIT: Duration = Duration::from_secs(5);

/// The committed inputs of one target, by file name.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/fuzz")
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<(PathBuf, Vec<u8>)> = entries
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let data = std::fs::read(&p).expect("read a fuzz input");
            (p, data)
        })
        .collect();
    out.sort();
    out
}

/// Runs `f` on another thread, failing if it panics or takes longer than `LIMIT`.
fn within_limit(input: &Path, f: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        f();
        let _ = done.send(());
    });
    match finished.recv_timeout(LIMIT) {
        Ok(()) => {}
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = worker.join() {
                eprintln!("{} panicked", input.display());
                std::panic::resume_unwind(panic);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{} took longer than {LIMIT:?}", input.display())
        }
    }
}

#[test]
fn bounce_read() {
    for (path, data) in inputs("bounce_read") {
        within_limit(&path, move || {
            let tracks = Tracks::new(
                posthorn::config::ReturnPath::parse("bounces@example.com")
                    .ok()
                    .as_ref(),
                Some("example.com"),
            );
            let _ = bounces::read(&data, &tracks);
        });
    }
}

#[test]
fn upstream_feed() {
    for (path, data) in inputs("upstream_feed") {
        within_limit(&path, move || {
            let url = Url::parse("https://blog.example.com/feed/rss").expect("a fixed URL");
            if let Ok(text) = upstream::decode(&data, None) {
                let _ = upstream::parse(&text, &url);
            }
        });
    }
}

#[test]
fn front_matter() {
    for (path, data) in inputs("front_matter") {
        within_limit(&path, move || {
            let dir = tempfile::tempdir().expect("a temp folder");
            let config = Config::from_toml_str(
                "[site]\ntitle = \"t\"\nbase_url = \"https://essays.example.com/blog/\"\n\
                 author = \"a\"\ntimezone = \"America/New_York\"\n\
                 [email]\nfrom = \"a@example.com\"\n",
                &dir.path().join("config.toml"),
            )
            .expect("the config");
            std::fs::create_dir_all(dir.path().join("posts")).expect("posts folder");
            std::fs::write(dir.path().join("posts/essay.md"), &data).expect("write the post");
            let links = Links::new(&config, Tokens::new(b"0123456789abcdef"));
            let loaded = posts::load_dir(&config, &links).expect("the posts folder is there");
            assert_eq!(loaded.posts.len() + loaded.errors.len(), 1);
        });
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn csv_import() {
    let inputs = inputs("csv_import");
    if inputs.is_empty() {
        return;
    }
    let site = TestSite::new(None);
    site.append_config("[posts]\ntopics = [\"notes\", \"에세이\"]");
    let app = site.app().await;
    let now = Utc
        .timestamp_opt(1_800_000_000, 0)
        .single()
        .expect("a time");
    for (path, data) in inputs {
        let import = app.subscriptions().import_file(
            std::io::Cursor::new(data.clone()),
            "fuzz.csv",
            None,
            now,
        );
        match tokio::time::timeout(LIMIT, import).await {
            Ok(Ok(report)) => {
                let rows: Vec<(Option<String>, usize)> = report
                    .rejected
                    .iter()
                    .map(|r| (r.file.clone(), r.row))
                    .collect();
                // Rows count up within each file (a ZIP may hold several).
                assert!(
                    rows.windows(2).all(|w| w[0].0 != w[1].0 || w[0].1 < w[1].1)
                        && rows.iter().all(|r| r.1 >= 2),
                    "{}: rows {rows:?}",
                    path.display()
                );
            }
            Ok(Err(_)) => {}
            Err(_) => panic!("{} took longer than {LIMIT:?}", path.display()),
        }
    }
}

#[test]
fn message_layout() {
    for (path, data) in inputs("message_layout") {
        within_limit(&path, move || {
            message_checks::check(&message_checks::Fields::from_bytes(&data));
        });
    }
}
