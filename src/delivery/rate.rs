//! One rate limit shared by every connection of a process.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Spaces sends evenly at `rate` per second (a bucket of one token): a burst
/// never exceeds the limit, whatever the number of connections.
pub struct RateLimiter {
    interval: Option<Duration>,
    next: Mutex<Instant>,
}

impl RateLimiter {
    /// `0` means unlimited.
    pub fn per_second(rate: u32) -> RateLimiter {
        RateLimiter {
            interval: (rate > 0).then(|| Duration::from_secs(1) / rate),
            next: Mutex::new(Instant::now()),
        }
    }

    pub async fn acquire(&self) {
        let Some(interval) = self.interval else {
            return;
        };
        let at = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let at = (*next).max(Instant::now());
            *next = at + interval;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spaces_acquisitions_evenly() {
        let limiter = RateLimiter::per_second(10);
        let start = Instant::now();
        for _ in 0..11 {
            limiter.acquire().await;
        }
        // The first token is immediate; ten more take a second at 10/s.
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }
}
