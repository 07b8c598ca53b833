//! A followed blog's feed, as fetched: decoded to text, then read into entries.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use posthorn::posts::upstream;
use url::Url;

static FEED_URL: LazyLock<Url> =
    LazyLock::new(|| Url::parse("https://blog.example.com/feed/rss").expect("a fixed URL"));

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = upstream::decode(data, None) {
        let _ = upstream::parse(&text, &FEED_URL);
    }
});
