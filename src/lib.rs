//! posthorn publishes one author's essays by email, as RSS, Atom and JSON feeds,
//! and as a small web archive.
//!
//! Imports flow one way, each layer using only those below it:
//!
//! ```text
//! web, commands          the faces: HTTP and the command line, thin
//! schedule               the cron job that runs a tick
//! app                    the services: Tick, Letters, Issues, Publishing, Subscriptions, Ledger, Bounces
//! delivery               claims, transports behind a trait, rate limit, retries, recorder
//! feeds, site            RSS, Atom, JSON Feed; the public site at one moment, built to files
//! render                 Handlebars: email HTML + text, pages
//! posts                  front matter, Markdown, upstream fetch
//! bounces                reading bounces, complaints and providers' notifications
//! store                  SQL; the only place that knows SQLite from PostgreSQL
//! domain, config, error, the shared nouns, strict config, errors, signed tokens,
//! tokens, links,         every public URL, and what counting needs (who asked,
//! analytics              how many different emails)
//! ```

pub mod analytics;
pub mod app;
pub mod bounces;
pub mod commands;
pub mod config;
pub mod delivery;
pub mod domain;
pub mod error;
pub mod feeds;
pub mod links;
pub mod posts;
pub mod render;
pub mod schedule;
pub mod site;
pub mod store;
pub mod tokens;
pub mod web;

pub use app::App;
pub use config::Config;
pub use error::Error;
