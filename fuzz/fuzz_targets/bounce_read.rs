//! Any bytes handed to the bounce reader (an IMAP mailbox, a pipe from the MTA)
//! give a report or an error, never a panic.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use posthorn::bounces::{self, Tracks};

static TRACKS: LazyLock<Tracks> = LazyLock::new(|| {
    Tracks::new(
        posthorn::config::ReturnPath::parse("bounces@example.com").ok().as_ref(),
        Some("example.com"),
    )
});

fuzz_target!(|data: &[u8]| {
    let _ = bounces::read(data, &TRACKS);
});
