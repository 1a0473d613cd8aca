//! The servers behind one OpenAI-compatible spec: one, or several replicas serving the
//! same weights (`openai-compatible:http://a/v1,http://b/v1/MODEL`).
//!
//! A request goes to the replica with the fewest of this model's requests assigned (in
//! flight or waiting for a slot); ties go round-robin. Each replica has its own adaptive
//! limit (shared with every spec naming that server). A connection error or a 5xx from
//! one replica sends the request to another at once and marks the first down for
//! [`COOLDOWN`]; a replica that is down is skipped until then, unless every replica not
//! yet tried by this request is down (then the one back soonest is tried: there is nowhere
//! better to go). An attempt tries each replica at most once; when all of them failed,
//! the call fails with a retryable error and the retry layer above waits and tries
//! again. Timeouts do not fail over (the server may still be working on the request);
//! other errors are returned as they are. With one server none of this applies: the
//! request is sent and its error returned.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{AdaptiveLimiter, ModelError};

/// How long a replica that failed is skipped.
pub(crate) const COOLDOWN: Duration = Duration::from_secs(5);

/// One server: its base URL (credentials taken out), HTTP Basic credentials from its URL,
/// its limit (replicas only) and whether it is down.
pub(crate) struct Server {
    pub(crate) base: String,
    pub(crate) basic: Option<(String, String)>,
    limiter: Option<Arc<AdaptiveLimiter>>,
    assigned: AtomicUsize,
    down: Mutex<Option<(Instant, String)>>,
}

/// The servers of one spec.
pub(crate) struct Servers {
    list: Vec<Server>,
    turn: AtomicUsize,
    cooldown: Duration,
}

/// A request's hold on a server: counts it as assigned, and holds a slot of the server's
/// limit once [`Slot::acquire`] returns.
pub(crate) struct Slot<'a> {
    pub(crate) server: &'a Server,
    _permit: Option<crate::limiter::Permit<'a>>,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.server.assigned.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Server {
    pub(crate) fn new(base: String, basic: Option<(String, String)>) -> Server {
        Server {
            base,
            basic,
            limiter: None,
            assigned: AtomicUsize::new(0),
            down: Mutex::new(None),
        }
    }

    pub(crate) fn succeeded(&self) {
        if let Some(l) = &self.limiter {
            l.on_success();
        }
        *self.down.lock().unwrap() = None;
    }

    pub(crate) fn backpressure(&self) {
        if let Some(l) = &self.limiter {
            l.on_backpressure();
        }
    }
}

impl Servers {
    pub(crate) fn new(list: Vec<Server>) -> Servers {
        Servers {
            list,
            turn: AtomicUsize::new(0),
            cooldown: COOLDOWN,
        }
    }

    /// Gives each server its own limit (one per server, in order). Used for replicas; a
    /// single server is limited by the retry layer's limiter alone.
    pub(crate) fn with_limiters(mut self, limiters: Vec<Arc<AdaptiveLimiter>>) -> Servers {
        for (s, l) in self.list.iter_mut().zip(limiters) {
            s.limiter = Some(l);
        }
        self
    }

    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    /// The server for the next try of a request that already tried those marked in
    /// `tried`: among the servers up, the one with the fewest requests assigned, ties
    /// round-robin; if every untried server is down, the one back soonest. `None` when
    /// every server was tried.
    pub(crate) fn pick(&self, tried: &[bool]) -> Option<usize> {
        let n = self.list.len();
        let now = Instant::now();
        let start = self.turn.fetch_add(1, Ordering::Relaxed);
        let mut best: Option<(usize, usize)> = None;
        let mut soonest: Option<(Instant, usize)> = None;
        for k in 0..n {
            let i = (start + k) % n;
            if tried[i] {
                continue;
            }
            let until = self.list[i]
                .down
                .lock()
                .unwrap()
                .as_ref()
                .map(|(t, _)| *t)
                .filter(|t| *t > now);
            if let Some(t) = until {
                if soonest.is_none_or(|(s, _)| t < s) {
                    soonest = Some((t, i));
                }
                continue;
            }
            let load = self.list[i].assigned.load(Ordering::Relaxed);
            if best.is_none_or(|(l, _)| load < l) {
                best = Some((load, i));
            }
        }
        best.map(|(_, i)| i).or(soonest.map(|(_, i)| i))
    }

    /// Counts a request as assigned to server `i` and waits for a slot of its limit.
    pub(crate) async fn acquire(&self, i: usize) -> Slot<'_> {
        let server = &self.list[i];
        server.assigned.fetch_add(1, Ordering::Relaxed);
        let permit = match &server.limiter {
            Some(l) => Some(l.acquire().await),
            None => None,
        };
        Slot {
            server,
            _permit: permit,
        }
    }

    /// Whether `e` from one replica sends the request to another.
    pub(crate) fn fails_over(&self, e: &ModelError) -> bool {
        self.list.len() > 1
            && match e {
                ModelError::Connection(_) => true,
                ModelError::Server { status, .. } => *status >= 500,
                _ => false,
            }
    }

    /// Marks server `i` down for the cooldown, remembering why.
    pub(crate) fn mark_down(&self, i: usize, why: &ModelError) {
        *self.list[i].down.lock().unwrap() =
            Some((Instant::now() + self.cooldown, why.to_string()));
    }

    /// The error of a request every replica failed (retryable, so the retry layer waits
    /// and tries again), saying why each is down.
    pub(crate) fn all_failed(&self, shown: impl Fn(&str) -> String) -> ModelError {
        let why: Vec<String> = self
            .list
            .iter()
            .map(|s| {
                let d = s.down.lock().unwrap();
                format!(
                    "{}: {}",
                    shown(&s.base),
                    d.as_ref().map_or("up", |(_, w)| w.as_str())
                )
            })
            .collect();
        ModelError::Connection(format!(
            "all {} replicas failed ({})",
            self.list.len(),
            why.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn servers(n: usize) -> Servers {
        Servers::new(
            (0..n)
                .map(|i| Server::new(format!("http://h{i}/v1"), None))
                .collect(),
        )
    }

    #[test]
    fn ties_go_round_robin_and_load_wins() {
        let s = servers(3);
        let picks: Vec<usize> = (0..6).map(|_| s.pick(&[false; 3]).unwrap()).collect();
        assert_eq!(picks, vec![0, 1, 2, 0, 1, 2]);
        s.list[1].assigned.store(2, Ordering::Relaxed);
        s.list[2].assigned.store(1, Ordering::Relaxed);
        assert_eq!(s.pick(&[false; 3]), Some(0));
        assert_eq!(s.pick(&[true, false, false]), Some(2));
        assert_eq!(s.pick(&[true, false, true]), Some(1));
        assert_eq!(s.pick(&[true; 3]), None);
    }

    #[test]
    fn a_replica_down_is_skipped_until_its_cooldown_passes() {
        let mut s = servers(2);
        s.cooldown = Duration::from_millis(30);
        assert!(s.fails_over(&ModelError::Connection("refused".into())));
        assert!(s.fails_over(&ModelError::Server {
            status: 502,
            retry_after: None,
            message: String::new()
        }));
        assert!(!s.fails_over(&ModelError::Timeout(Duration::from_secs(1))));
        assert!(!s.fails_over(&ModelError::RateLimited {
            retry_after: None,
            message: String::new()
        }));
        s.mark_down(1, &ModelError::Connection("refused".into()));
        for _ in 0..4 {
            assert_eq!(s.pick(&[false; 2]), Some(0));
        }
        // With the one that is up tried, the one that is down gets its chance.
        assert_eq!(s.pick(&[true, false]), Some(1));
        std::thread::sleep(Duration::from_millis(5));
        s.mark_down(0, &ModelError::Connection("reset".into()));
        // Both down: the one back soonest (1, marked first).
        assert_eq!(s.pick(&[false; 2]), Some(1));
        assert_eq!(s.pick(&[true; 2]), None);
        let e = s.all_failed(|b| b.to_string()).to_string();
        assert!(
            e.contains("all 2 replicas failed")
                && e.contains("http://h1/v1: connection failed: refused")
                && e.contains("http://h0/v1: connection failed: reset"),
            "{e}"
        );
        assert!(e.is_empty() || ModelError::Connection(e).is_retryable());
        std::thread::sleep(Duration::from_millis(40));
        let after: Vec<usize> = (0..2).map(|_| s.pick(&[false; 2]).unwrap()).collect();
        assert!(
            after.contains(&0) && after.contains(&1),
            "both up again: {after:?}"
        );
        // One server is never down: its errors are returned as they are.
        let one = servers(1);
        assert!(!one.fails_over(&ModelError::Connection("refused".into())));
    }
}
