//! Several SMTP relays behind one session: a weighted share each, their own
//! sessions, concurrency and rate, and failover when one goes away.
//!
//! A relay that cannot be reached, does not answer in time, refuses the
//! login, or answers MAIL FROM with a 4xx (421 included) is set aside: the
//! message goes through another relay at once, and the relay is tried again
//! after a pause that doubles while it keeps failing (a circuit breaker). A
//! refusal about the recipient stays the reader's. Weight 0 makes a standby,
//! used only while every weighted relay is set aside.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::{SendError, Session, SmtpSession, SmtpTransport, Transport};
use crate::config::{Config, RelayName};
use crate::delivery::message::Outgoing;
use crate::delivery::rate::RateLimiter;

/// The first wait before a relay set aside is tried again; it doubles up to `MAX_PAUSE`.
const FIRST_PAUSE: Duration = Duration::from_secs(1);
const MAX_PAUSE: Duration = Duration::from_secs(60);

/// Whether a relay is taking mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RelayState {
    Up,
    /// Failed; tried again after its pause.
    SetAside,
}

/// One relay as the dashboard and `status` show it.
#[derive(Debug, Clone, Serialize)]
pub struct RelayView {
    pub name: RelayName,
    pub weight: u32,
    pub state: RelayState,
    /// Why it was last set aside.
    pub last_error: Option<String>,
}

#[derive(Debug, Default)]
struct Breaker {
    /// Failures in a row.
    failures: u32,
    /// Not tried before this instant.
    paused_until: Option<Instant>,
    last_error: Option<String>,
}

struct Relay {
    name: RelayName,
    transport: SmtpTransport,
    weight: u32,
    sessions: Arc<Semaphore>,
    rate: RateLimiter,
    breaker: Mutex<Breaker>,
    meters: RelayMeters,
}

/// What the relays did since start, for `/metrics`: messages each took,
/// refused for the reader's sake, or failed at on its own fault, and how long
/// each message took on the wire.
#[derive(Debug, Clone)]
pub struct SmtpMeters {
    pub messages: Family<RelayOutcome, Counter>,
    pub seconds: Family<RelayLabel, Histogram, fn() -> Histogram>,
}

/// Seconds a message takes on the wire: tens of milliseconds to a nearby
/// relay, seconds to a slow one, the timeout at worst.
fn smtp_seconds() -> Histogram {
    Histogram::new([0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
}

impl SmtpMeters {
    fn new() -> SmtpMeters {
        SmtpMeters {
            messages: Family::default(),
            seconds: Family::new_with_constructor(smtp_seconds),
        }
    }

    /// One relay's meters, counting into these families.
    fn relay(&self, name: &RelayName) -> RelayMeters {
        let relay = name.to_string();
        let outcome = |result| {
            self.messages
                .get_or_create(&RelayOutcome {
                    relay: relay.clone(),
                    result,
                })
                .clone()
        };
        RelayMeters {
            sent: outcome("sent"),
            refused: outcome("refused"),
            faults: outcome("fault"),
            seconds: self
                .seconds
                .get_or_create(&RelayLabel {
                    relay: relay.clone(),
                })
                .clone(),
        }
    }
}

/// A relay, as a label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RelayLabel {
    pub relay: String,
}

/// A relay and what became of a message there.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RelayOutcome {
    pub relay: String,
    /// `sent`, `refused` (the reader's address) or `fault` (the relay's).
    pub result: &'static str,
}

/// The meters of one relay, sharing their counts with [`SmtpMeters`].
#[derive(Debug, Clone)]
struct RelayMeters {
    sent: Counter,
    refused: Counter,
    faults: Counter,
    seconds: Histogram,
}

impl Relay {
    fn paused_until(&self) -> Option<Instant> {
        self.breaker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .paused_until
    }

    fn is_up(&self, now: Instant) -> bool {
        self.paused_until().is_none_or(|until| now >= until)
    }
}

/// Every configured relay, shared by the sessions of a process.
pub struct RelayPool {
    relays: Vec<Relay>,
    meters: SmtpMeters,
    /// Smooth weighted round robin (each relay's running credit), so shares
    /// interleave instead of coming in runs.
    credit: Mutex<Vec<i64>>,
}

impl std::fmt::Debug for RelayPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.relays.iter().map(|r| r.name.as_str()).collect();
        f.debug_struct("RelayPool").field("relays", &names).finish()
    }
}

impl RelayPool {
    pub fn new(config: &Config) -> RelayPool {
        let meters = SmtpMeters::new();
        let relays: Vec<Relay> = config
            .all_relays()
            .map(|(name, smtp)| Relay {
                meters: meters.relay(&name),
                name,
                transport: SmtpTransport::with(smtp.clone()),
                weight: smtp.weight,
                sessions: Arc::new(Semaphore::new(smtp.concurrency.max(1))),
                rate: RateLimiter::per_second(smtp.rate_per_second),
                breaker: Mutex::new(Breaker::default()),
            })
            .collect();
        let credit = Mutex::new(vec![0; relays.len()]);
        RelayPool {
            relays,
            meters,
            credit,
        }
    }

    /// Sessions worth running at once: every weighted relay's concurrency.
    pub fn concurrency(&self) -> usize {
        self.relays
            .iter()
            .filter(|r| r.weight > 0)
            .map(|r| r.sessions.available_permits())
            .sum::<usize>()
            .max(1)
    }

    /// What the relays did since start.
    pub fn meters(&self) -> SmtpMeters {
        self.meters.clone()
    }

    pub fn views(&self) -> Vec<RelayView> {
        let now = Instant::now();
        self.relays
            .iter()
            .map(|r| {
                let last_error = r
                    .breaker
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .last_error
                    .clone();
                RelayView {
                    name: r.name.clone(),
                    weight: r.weight,
                    state: if r.is_up(now) {
                        RelayState::Up
                    } else {
                        RelayState::SetAside
                    },
                    last_error,
                }
            })
            .collect()
    }

    /// Tries every relay at once, as a send would up to MAIL FROM, and sets
    /// aside those that do not answer.
    pub async fn probe(&self) {
        let tries = self.relays.iter().map(|r| r.transport.session().probe());
        for (i, result) in futures_util::future::join_all(tries)
            .await
            .into_iter()
            .enumerate()
        {
            match result {
                Ok(()) => self.answered(i),
                Err(e) => self.set_aside(i, &e),
            }
        }
    }

    /// The next relay to use, not among `tried`: by weight among the weighted
    /// relays that are up, else a standby that is up.
    fn pick(&self, tried: &[bool]) -> Option<usize> {
        let now = Instant::now();
        let usable = |i: usize| !tried[i] && self.relays[i].is_up(now);
        let mut credit = self.credit.lock().unwrap_or_else(|e| e.into_inner());
        // One pass, no allocation: it runs for every message.
        let (mut total, mut best) = (0_i64, None::<usize>);
        for i in (0..self.relays.len()).filter(|&i| self.relays[i].weight > 0 && usable(i)) {
            let weight = i64::from(self.relays[i].weight);
            credit[i] += weight;
            total += weight;
            if best.is_none_or(|b| credit[i] > credit[b]) {
                best = Some(i);
            }
        }
        let Some(best) = best else {
            let standby = (0..self.relays.len()).find(|&i| self.relays[i].weight == 0 && usable(i));
            // With every relay set aside, the one due back first is tried
            // rather than none: a send never waits on a pause alone.
            return standby.or_else(|| {
                (0..self.relays.len())
                    .filter(|&i| !tried[i])
                    .min_by_key(|&i| self.relays[i].paused_until())
            });
        };
        credit[best] -= total;
        Some(best)
    }

    fn set_aside(&self, i: usize, why: &SendError) {
        let relay = &self.relays[i];
        let mut b = relay.breaker.lock().unwrap_or_else(|e| e.into_inner());
        b.failures = b.failures.saturating_add(1);
        let pause = FIRST_PAUSE
            .saturating_mul(1 << (b.failures - 1).min(10))
            .min(MAX_PAUSE);
        b.paused_until = Some(Instant::now() + pause);
        let why = crate::error::chain(why);
        tracing::warn!(relay = %relay.name, error = %why, pause_s = pause.as_secs(), "relay set aside; its mail goes through another");
        b.last_error = Some(why);
    }

    fn answered(&self, i: usize) {
        let relay = &self.relays[i];
        let mut b = relay.breaker.lock().unwrap_or_else(|e| e.into_inner());
        if b.failures > 0 {
            tracing::info!(relay = %relay.name, "relay answers again");
        }
        *b = Breaker::default();
    }
}

/// One worker's sessions, one per relay, each connected on first use.
pub struct RelaySession {
    pool: Arc<RelayPool>,
    sessions: Vec<Option<SmtpSession>>,
    last: Option<usize>,
}

impl RelaySession {
    pub fn new(pool: Arc<RelayPool>) -> RelaySession {
        let sessions = pool.relays.iter().map(|_| None).collect();
        RelaySession {
            pool,
            sessions,
            last: None,
        }
    }
}

impl Session for RelaySession {
    async fn send(&mut self, message: &Outgoing) -> Result<String, SendError> {
        let pool = self.pool.clone();
        let mut tried = vec![false; pool.relays.len()];
        let mut last_fault = None;
        self.last = None;
        while let Some(i) = pool.pick(&tried) {
            tried[i] = true;
            let relay = &pool.relays[i];
            let _permit = relay
                .sessions
                .acquire()
                .await
                .map_err(|e| SendError::NoRelay(e.to_string()))?;
            relay.rate.acquire().await;
            self.last = Some(i);
            let session = self.sessions[i].get_or_insert_with(|| relay.transport.session());
            let started = Instant::now();
            let result = session.send(message).await;
            relay
                .meters
                .seconds
                .observe(started.elapsed().as_secs_f64());
            match result {
                Err(e) if e.is_relay_fault() => {
                    relay.meters.faults.inc();
                    pool.set_aside(i, &e);
                    if let Some(broken) = self.sessions[i].take() {
                        broken.close().await;
                    }
                    last_fault = Some(format!("{}: {}", relay.name, crate::error::chain(&e)));
                }
                result => {
                    pool.answered(i);
                    match &result {
                        Ok(_) => relay.meters.sent.inc(),
                        Err(_) => relay.meters.refused.inc(),
                    };
                    return result;
                }
            }
        }
        Err(SendError::NoRelay(last_fault.unwrap_or_else(|| {
            "none is due to be tried again yet".into()
        })))
    }

    fn relay(&self) -> Option<RelayName> {
        self.last.map(|i| self.pool.relays[i].name.clone())
    }

    async fn close(self) {
        for session in self.sessions.into_iter().flatten() {
            session.close().await;
        }
    }
}

impl Transport for Arc<RelayPool> {
    type Session = RelaySession;
    fn session(&self) -> RelaySession {
        RelaySession::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(weights: &[(&str, u32)]) -> RelayPool {
        let mut text = String::from(
            "[site]\ntitle = \"t\"\nauthor = \"a\"\nbase_url = \"https://example.org\"\n[email]\nfrom = \"a@example.org\"\n",
        );
        for (name, weight) in weights {
            if *name == "smtp" {
                text.push_str(&format!("[smtp]\nweight = {weight}\n"));
            } else {
                text.push_str(&format!("[relays.{name}]\nweight = {weight}\n"));
            }
        }
        let config =
            Config::from_toml_str(&text, std::path::Path::new("config.toml")).expect("config");
        RelayPool::new(&config)
    }

    #[test]
    fn shares_follow_the_weights_and_interleave() {
        let pool = pool(&[("smtp", 1), ("b", 3)]);
        let picks: Vec<usize> = (0..8).filter_map(|_| pool.pick(&[false, false])).collect();
        assert_eq!(picks.iter().filter(|&&i| i == 1).count(), 6);
        assert_eq!(picks.iter().filter(|&&i| i == 0).count(), 2);
        // Never the same lone relay four times running at 1:3.
        assert!(picks.windows(4).all(|w| w.contains(&0)), "{picks:?}");
    }

    #[test]
    fn a_standby_is_used_only_while_every_weighted_relay_is_set_aside() {
        let pool = pool(&[("smtp", 1), ("spare", 0)]);
        assert_eq!(pool.pick(&[false, false]), Some(0));
        pool.set_aside(0, &SendError::Timeout(1));
        assert_eq!(pool.pick(&[false, false]), Some(1));
        assert_eq!(pool.views()[0].state, RelayState::SetAside);
        // Both set aside: the one due back first is tried, not none.
        pool.set_aside(1, &SendError::Timeout(1));
        pool.set_aside(1, &SendError::Timeout(1));
        assert_eq!(pool.pick(&[false, false]), Some(0));
        pool.answered(0);
        assert_eq!(pool.pick(&[false, false]), Some(0));
        // Tried already in this send: not again.
        assert_eq!(pool.pick(&[true, true]), None);
    }
}
