//! A post file, read the way `posthorn build` reads the posts folder: front
//! matter (TOML or YAML), dates, slug, Markdown, summary. Any bytes give a post
//! or an error naming the file, never a panic.
#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use posthorn::config::Config;
use posthorn::links::Links;
use posthorn::posts;
use posthorn::tokens::Tokens;

struct Site {
    /// The site's folder (under $TMPDIR): removed with the process's temp files.
    _dir: tempfile::TempDir,
    post: PathBuf,
    config: Config,
    links: Links,
}

static SITE: LazyLock<Site> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("a temp folder");
    let config_path = dir.path().join("config.toml");
    // A zone with daylight-saving gaps, so dates that do not exist are reached.
    let config = Config::from_toml_str(
        r#"
[site]
title = "t"
base_url = "https://essays.example.com/blog/"
author = "a"
timezone = "America/New_York"

[email]
from = "a@example.com"
"#,
        &config_path,
    )
    .expect("the fuzz config");
    std::fs::create_dir_all(dir.path().join("posts")).expect("posts folder");
    let links = Links::new(&config, Tokens::new(b"0123456789abcdef"));
    Site {
        post: dir.path().join("posts/essay.md"),
        _dir: dir,
        config,
        links,
    }
});

fuzz_target!(|data: &[u8]| {
    let site = &*SITE;
    std::fs::write(&site.post, data).expect("write the post");
    let loaded = posts::load_dir(&site.config, &site.links).expect("the posts folder is there");
    assert_eq!(
        loaded.posts.len() + loaded.errors.len(),
        1,
        "one file gives one post or one error"
    );
});
