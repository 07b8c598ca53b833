//! `posthorn subscribers import FILE` and the dashboard's upload: any file (a
//! CSV of any service's shape, or a ZIP of them) gives a report (rows added,
//! already there, rejected with a reason) or an error about the file, never a
//! panic. Runs against a real SQLite database,
//! replaced every few thousand inputs so that it stays small.
#![no_main]

use std::cell::RefCell;

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use posthorn::{App, Config};

/// Inputs per database before a fresh one.
const INPUTS_PER_DATABASE: u32 = 2000;

struct Site {
    app: App,
    inputs: u32,
    _dir: tempfile::TempDir,
}

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    static SITE: RefCell<Option<Site>> = const { RefCell::new(None) };
}

fn open(rt: &tokio::runtime::Runtime) -> Site {
    let dir = tempfile::tempdir().expect("a temp folder");
    let config_path = dir.path().join("config.toml");
    let config = Config::from_toml_str(
        r#"
[site]
title = "t"
base_url = "https://essays.example.com"
author = "a"

[posts]
topics = ["notes", "에세이"]

[database]
url = "sqlite://subscribers/posthorn.db"

[email]
from = "a@example.com"

[server]
secret = "0123456789abcdef0123456789abcdef"
"#,
        &config_path,
    )
    .expect("the fuzz config");
    let app = rt.block_on(App::open(config)).expect("open the site");
    Site {
        app,
        inputs: 0,
        _dir: dir,
    }
}

fuzz_target!(|data: &[u8]| {
    RUNTIME.with(|rt| {
        SITE.with(|site| {
            let mut site = site.borrow_mut();
            if site
                .as_ref()
                .is_none_or(|s| s.inputs >= INPUTS_PER_DATABASE)
            {
                if let Some(old) = site.take() {
                    rt.block_on(old.app.close());
                }
                *site = Some(open(rt));
            }
            let site = site.as_mut().expect("opened above");
            site.inputs += 1;
            let now = Utc
                .timestamp_opt(1_800_000_000, 0)
                .single()
                .expect("a time");
            let input = std::io::Cursor::new(data.to_vec());
            let import = site.app.subscriptions().import_file(input, "fuzz.csv", None, now);
            let result = rt.block_on(import);
            if let Ok(report) = result {
                // Rows count up within each file (a ZIP may hold several).
                let mut last = (None, 1);
                for r in &report.rejected {
                    if r.file != last.0 {
                        last = (r.file.clone(), 1);
                    }
                    assert!(r.row > last.1, "rows out of order: {:?}", report.rejected);
                    last.1 = r.row;
                }
            }
        })
    })
});
