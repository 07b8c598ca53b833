//! Following an existing blog: fetch its RSS or Atom feed with a conditional GET,
//! and turn each entry into a post, keyed so that it is recognised forever.

mod decode;
mod entries;
mod fetch;
mod redirect;

pub use decode::decode;
pub use entries::parse;
pub use fetch::{fetch, Fetch, Fetched, MAX_FEED_BYTES};
