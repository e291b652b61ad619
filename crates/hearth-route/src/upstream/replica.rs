//! One replica of an upstream: its in-flight count, health and circuit
//! breaker (closed → open after N failures in a row → half-open after T:
//! one probe request; its success closes the breaker, its failure opens it
//! again).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Replica {
    pub url: String,
    pub in_flight: AtomicUsize,
    pub served: AtomicU64,
    healthy: AtomicBool,
    failures: AtomicU32,
    threshold: u32,
    open_for: Duration,
    breaker: Mutex<Breaker>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Breaker {
    Closed,
    Open(Instant),
    /// A probe request is under way.
    Probing,
}

/// What `Pool::stats` reports per replica.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaStats {
    pub url: String,
    pub in_flight: usize,
    pub served: u64,
    pub healthy: bool,
    /// `closed`, `open` or `half-open`.
    pub breaker: &'static str,
}

/// Decrements the in-flight count when dropped.
pub struct Busy<'a>(&'a AtomicUsize);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Replica {
    pub fn new(url: &str, threshold: u32, open_for: Duration) -> Replica {
        Replica {
            url: url.to_string(),
            in_flight: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            healthy: AtomicBool::new(true),
            failures: AtomicU32::new(0),
            threshold,
            open_for,
            breaker: Mutex::new(Breaker::Closed),
        }
    }

    fn state(&self) -> Breaker {
        self.breaker.lock().map(|b| *b).unwrap_or(Breaker::Closed)
    }

    /// Healthy, and its breaker closed or due for a probe.
    pub fn usable(&self) -> bool {
        if !self.healthy.load(Ordering::SeqCst) {
            return false;
        }
        match self.state() {
            Breaker::Closed => true,
            Breaker::Open(since) => since.elapsed() >= self.open_for,
            Breaker::Probing => false,
        }
    }

    /// Takes the replica for one request; false when another request
    /// already holds its half-open probe.
    pub fn claim(&self) -> bool {
        let Ok(mut b) = self.breaker.lock() else {
            return true;
        };
        match *b {
            Breaker::Closed => true,
            Breaker::Open(since) if since.elapsed() >= self.open_for => {
                *b = Breaker::Probing;
                true
            }
            _ => false,
        }
    }

    pub fn busy(&self) -> Busy<'_> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        Busy(&self.in_flight)
    }

    pub fn succeeded(&self) {
        self.failures.store(0, Ordering::SeqCst);
        if let Ok(mut b) = self.breaker.lock() {
            *b = Breaker::Closed;
        }
    }

    pub fn failed(&self) {
        let n = self.failures.fetch_add(1, Ordering::SeqCst) + 1;
        if let Ok(mut b) = self.breaker.lock() {
            if n >= self.threshold || *b == Breaker::Probing {
                *b = Breaker::Open(Instant::now());
            }
        }
    }

    pub fn set_healthy(&self, ok: bool) {
        self.healthy.store(ok, Ordering::SeqCst);
    }

    pub fn stats(&self) -> ReplicaStats {
        ReplicaStats {
            url: self.url.clone(),
            in_flight: self.in_flight.load(Ordering::SeqCst),
            served: self.served.load(Ordering::SeqCst),
            healthy: self.healthy.load(Ordering::SeqCst),
            breaker: match self.state() {
                Breaker::Closed => "closed",
                Breaker::Open(since) if since.elapsed() >= self.open_for => "half-open",
                Breaker::Open(_) => "open",
                Breaker::Probing => "half-open",
            },
        }
    }
}
