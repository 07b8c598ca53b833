//! An issue laid out for a subscriber, with a subject, a name, an address and
//! bodies from the input (fields separated by 0xFF bytes): the invariants are
//! the ones the property test checks, in `tests/it/message_checks.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/it/message_checks.rs"]
mod message_checks;

fuzz_target!(|data: &[u8]| {
    message_checks::check(&message_checks::Fields::from_bytes(data));
});
