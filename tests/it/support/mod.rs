//! Shared test helpers, one file per concern: a site in a temp folder (`site`),
//! the real binary (`cli`), the real web server (`server`), a real SMTP server
//! (`smtp`), the one-call set-up most tests start from (`harness`), a PostgreSQL
//! database per site (`postgres`), Chromium (`browser`), and the machine itself
//! (`system`, `needs`).

#![allow(dead_code)]

pub mod browser;
pub mod cli;
pub mod harness;
pub mod needs;
pub mod postgres;
pub mod server;
pub mod site;
pub mod smtp;
pub mod system;

#[allow(unused_imports)]
pub use cli::CliOutput;
#[allow(unused_imports)]
pub use harness::{serve, serve_with, spawn, spawn_with};
#[allow(unused_imports)]
pub use server::{client, get_text, RunningServer};
#[allow(unused_imports)]
pub use site::{post, toml_string, TestSite};
#[allow(unused_imports)]
pub use smtp::{parse_message, Action, Received, SmtpServer};
#[allow(unused_imports)]
pub use system::{available, files_below, free_port, openssl};
