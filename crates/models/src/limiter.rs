//! An adaptive bound on requests in flight to one endpoint (AIMD: additive increase,
//! multiplicative decrease).
//!
//! The limit starts at the configured maximum. Each rate-limit or overload answer halves
//! it (at most once per `cooldown`, so a burst of 429s from one overloaded moment counts
//! once); each success adds `1/limit`, so the limit climbs back by about one per round
//! trip of the whole window. It never leaves `[1, max]`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

pub struct AdaptiveLimiter {
    max: usize,
    state: Mutex<State>,
    notify: Notify,
    cooldown: Duration,
}

struct State {
    in_flight: usize,
    limit: f64,
    last_decrease: Option<Instant>,
}

/// Holding one is one request in flight; dropping it frees the slot.
pub struct Permit<'a> {
    limiter: &'a AdaptiveLimiter,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut s = self.limiter.state.lock().unwrap();
        s.in_flight -= 1;
        drop(s);
        self.limiter.notify.notify_one();
    }
}

impl AdaptiveLimiter {
    pub fn new(max: usize) -> Self {
        let max = max.max(1);
        Self {
            max,
            state: Mutex::new(State {
                in_flight: 0,
                limit: max as f64,
                last_decrease: None,
            }),
            notify: Notify::new(),
            cooldown: Duration::from_millis(500),
        }
    }

    pub fn with_cooldown(mut self, d: Duration) -> Self {
        self.cooldown = d;
        self
    }

    /// Waits for a free slot under the current limit.
    pub async fn acquire(&self) -> Permit<'_> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut s = self.state.lock().unwrap();
                if s.in_flight < s.limit.floor() as usize {
                    s.in_flight += 1;
                    let spare = s.in_flight < s.limit.floor() as usize;
                    drop(s);
                    if spare {
                        // Pass a wake-up on so growth of the limit reaches other waiters.
                        self.notify.notify_one();
                    }
                    return Permit { limiter: self };
                }
            }
            notified.await;
        }
    }

    pub fn on_success(&self) {
        let mut s = self.state.lock().unwrap();
        if s.limit < self.max as f64 {
            s.limit = (s.limit + 1.0 / s.limit).min(self.max as f64);
            drop(s);
            self.notify.notify_one();
        }
    }

    pub fn on_backpressure(&self) {
        let mut s = self.state.lock().unwrap();
        let now = Instant::now();
        if s.last_decrease
            .is_some_and(|t| now.duration_since(t) < self.cooldown)
        {
            return;
        }
        s.last_decrease = Some(now);
        s.limit = (s.limit / 2.0).max(1.0);
    }

    pub fn limit(&self) -> usize {
        self.state.lock().unwrap().limit.floor() as usize
    }
    pub fn in_flight(&self) -> usize {
        self.state.lock().unwrap().in_flight
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn never_exceeds_the_limit() {
        let l = Arc::new(AdaptiveLimiter::new(7));
        let peak = Arc::new(AtomicUsize::new(0));
        let cur = Arc::new(AtomicUsize::new(0));
        let mut hs = vec![];
        for _ in 0..200 {
            let (l, peak, cur) = (l.clone(), peak.clone(), cur.clone());
            hs.push(tokio::spawn(async move {
                let _p = l.acquire().await;
                let n = cur.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(1)).await;
                cur.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        for h in hs {
            h.await.unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 7);
        assert_eq!(l.in_flight(), 0);
    }

    #[test]
    fn halves_on_backpressure_once_per_cooldown_and_recovers() {
        let l = AdaptiveLimiter::new(64).with_cooldown(Duration::from_secs(60));
        l.on_backpressure();
        l.on_backpressure();
        assert_eq!(l.limit(), 32);
        // Each +1 of the limit takes `limit` (at most 64) successes: 32 steps need
        // about 1536, so 32 * 64 is enough (the old 32 * 40 stopped at 59).
        for _ in 0..32 * 64 {
            l.on_success();
        }
        assert_eq!(l.limit(), 64);
        let l = AdaptiveLimiter::new(3).with_cooldown(Duration::ZERO);
        for _ in 0..10 {
            l.on_backpressure();
        }
        assert_eq!(l.limit(), 1);
    }
}
