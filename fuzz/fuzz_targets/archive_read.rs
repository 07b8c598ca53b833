//! `posthorn posts import`: any bytes as an old archive (WordPress's WXR, a
//! Ghost JSON export), each post's HTML sanitized and turned into Markdown, and
//! its bundle text written. An error or a report, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use posthorn::posts::archive::{self, ArchiveFormat};
use posthorn::posts::html::{for_markdown, image_urls, sanitize};
use posthorn::posts::upstream;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = upstream::decode(data, None) else {
        return;
    };
    for format in [ArchiveFormat::Wordpress, ArchiveFormat::Ghost] {
        let Ok(read) = archive::read_text(format, &text) else {
            continue;
        };
        for post in read.posts {
            let html = sanitize(&post.html, post.base.as_ref());
            let images = image_urls(&html).unwrap_or_default();
            let html = for_markdown(&html, &|url| {
                images.contains(url).then(|| "images/1-a.png".to_string())
            })
            .unwrap_or_default();
            if let Ok(markdown) = archive::to_markdown(&html) {
                let _ = archive::bundle_text(&post, &markdown, chrono_tz::Asia::Seoul);
            }
        }
    }
});
