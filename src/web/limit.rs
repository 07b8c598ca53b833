//! A token bucket per client IP, so a script cannot use the form to mail-bomb
//! strangers, nor guess the admin token at speed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;
// tokio's clock, so tests can move time (paused) to see the buckets refill.
use tokio::time::Instant;

pub struct IpLimiter {
    burst: f64,
    per_second: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

/// Buckets kept at most; full buckets are dropped first when there are more.
const MAX_TRACKED: usize = 100_000;

impl IpLimiter {
    /// `burst` requests at once, refilled at `per_minute`.
    pub fn new(burst: u32, per_minute: u32) -> IpLimiter {
        IpLimiter {
            burst: f64::from(burst),
            per_second: f64::from(per_minute) / 60.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `ip`. When its bucket is empty, takes nothing and
    /// says how long until it holds a whole token again.
    pub fn take(&self, ip: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_TRACKED {
            let (burst, rate) = (self.burst, self.per_second);
            buckets.retain(|_, (tokens, at)| *tokens + at.elapsed().as_secs_f64() * rate < burst);
        }
        let (tokens, at) = buckets.entry(ip).or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.per_second))
        }
    }

    /// Gives back the token of a request that turned out not to count (a
    /// sign-in with the right token): only failures use the bucket up, yet
    /// attempts at once cannot pass the burst, as each takes its token first.
    pub fn give_back(&self, ip: IpAddr) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((tokens, _)) = buckets.get_mut(&ip) {
            *tokens = (*tokens + 1.0).min(self.burst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_then_no_more() {
        let limiter = IpLimiter::new(3, 1);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(limiter.take(a).is_ok() && limiter.take(a).is_ok() && limiter.take(a).is_ok());
        assert_eq!(
            limiter.take(a),
            Err(Duration::from_secs(60)),
            "one a minute"
        );
        assert!(
            limiter.take(b).is_ok(),
            "another address has its own bucket"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_empty_bucket_refills_at_the_rate() {
        // 2 at once, then 6 a minute: one every 10 s.
        let limiter = IpLimiter::new(2, 6);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(limiter.take(a).is_ok() && limiter.take(a).is_ok());
        assert!(limiter.take(a).is_err());
        tokio::time::advance(Duration::from_secs(9)).await;
        let wait = limiter
            .take(a)
            .expect_err("not yet a whole token after 9 s");
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(limiter.take(a).is_ok(), "one token after 10 s");
        assert!(limiter.take(a).is_err());
        tokio::time::advance(Duration::from_secs(600)).await;
        assert!(limiter.take(a).is_ok() && limiter.take(a).is_ok());
        assert!(limiter.take(a).is_err(), "never more than the burst");
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_given_back_is_there_again_but_never_above_the_burst() {
        let limiter = IpLimiter::new(2, 6);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        limiter.give_back(a);
        assert!(limiter.take(a).is_ok() && limiter.take(a).is_ok());
        assert!(limiter.take(a).is_err());
        limiter.give_back(a);
        assert!(limiter.take(a).is_ok(), "the token given back");
        for _ in 0..5 {
            limiter.give_back(a);
        }
        assert!(limiter.take(a).is_ok() && limiter.take(a).is_ok());
        assert!(limiter.take(a).is_err(), "never more than the burst");
    }
}
