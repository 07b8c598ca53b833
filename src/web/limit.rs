//! A token bucket per client IP, so a script cannot use the form to mail-bomb strangers.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
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

    /// Takes one token for `ip`; false when its bucket is empty.
    pub fn allow(&self, ip: IpAddr) -> bool {
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
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_then_no_more() {
        let limiter = IpLimiter::new(3, 1);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(limiter.allow(a) && limiter.allow(a) && limiter.allow(a));
        assert!(!limiter.allow(a));
        assert!(limiter.allow(b), "another address has its own bucket");
    }

    #[tokio::test(start_paused = true)]
    async fn an_empty_bucket_refills_at_the_rate() {
        // 2 at once, then 6 a minute: one every 10 s.
        let limiter = IpLimiter::new(2, 6);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(limiter.allow(a) && limiter.allow(a));
        assert!(!limiter.allow(a));
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(!limiter.allow(a), "not yet a whole token after 9 s");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(limiter.allow(a), "one token after 10 s");
        assert!(!limiter.allow(a));
        tokio::time::advance(Duration::from_secs(600)).await;
        assert!(limiter.allow(a) && limiter.allow(a));
        assert!(!limiter.allow(a), "never more than the burst");
    }
}
