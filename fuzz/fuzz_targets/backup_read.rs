//! `posthorn restore`: any bytes as a backup's text (after gzip), read and
//! checked whole: its header, every row's shape, the counts and the checksum.
//! An error or a count, never a panic, in time linear in the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = posthorn::app::backup::check_text(data);
});
