//! What a click, an open or a feed fetch brings from outside: the token of
//! `/c/` or `/o/`, and the `User-Agent`. Any bytes are a 404 or a link that
//! was signed, never a panic; a forged token never names a link.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use posthorn::analytics::{followers, is_machine, machine_open};
use posthorn::tokens::Tokens;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let tokens = Tokens::new(b"0123456789abcdef");
    // `/c/{link}.{tag}`, as the web face splits it.
    if let Some((link, tag)) = text.split_once('.') {
        if let Ok(email) = tokens.verify_email_tag(tag) {
            if let Ok(url) = tokens.verify_counted_link(email.issue_id, link) {
                // Only what was signed verifies: signing it again gives the same link.
                assert_eq!(tokens.counted_link(email.issue_id, &url), link);
            }
        }
    }
    let _ = tokens.verify_email_tag(&text);
    let agent = Some(text.as_ref());
    let _ = is_machine(agent);
    let _ = machine_open(agent, IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)), false);
    if let Some(f) = followers(&text) {
        assert!(!f.service.is_empty());
    }
});
