//! posthorn publishes one author's essays by email, as RSS, Atom and JSON feeds,
//! and as a small web archive.
//!
//! A post flows one way: [`posts`] reads it, [`store`] keeps it, [`render`] turns
//! it into an email, and [`delivery`] sends it to every subscriber and logs each
//! delivery. [`app::App::run_once`] is one scheduler tick.

pub mod app;
pub mod commands;
pub mod config;
pub mod delivery;
pub mod domain;
pub mod error;
pub mod feeds;
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
