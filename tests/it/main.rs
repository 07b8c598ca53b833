//! posthorn's integration tests: one binary (one link of the whole dependency
//! tree), a module per area, and one support module with the real parts: an SMTP
//! server over TCP, a site in a temp folder with its SQLite file (or its own
//! PostgreSQL database), the running web server, the real binary.

mod support;

mod analytics;
mod backup;
mod bounce_corpus;
mod bounce_scaling;
mod bounces;
mod browser;
mod choices;
mod cli;
mod dashboard;
mod dashboard_browser;
mod delivery;
mod dovecot;
mod email;
mod feeds;
mod fuzz_regressions;
mod message_checks;
mod migrations;
mod moving_in;
mod operations;
mod pipeline;
mod postfix;
mod posts;
mod properties;
mod relays;
mod subscribe;
mod trust;
mod upstream;
mod web;
mod webhooks;
