//! Counters of this process's Redis adapters, for status and metrics:
//! process-wide relaxed atomics.

use std::sync::atomic::{AtomicU64, Ordering};

/// One process-wide counter.
#[derive(Debug)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    const fn new() -> Self {
        Counter(AtomicU64::new(0))
    }

    pub(crate) fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Publications handed to Redis.
pub(crate) static PUBLISHED: Counter = Counter::new();
/// Publications dropped before reaching Redis: the queue was full (Redis
/// away or too slow) or the publication failed.
pub(crate) static DROPPED: Counter = Counter::new();
/// Reconnections to Redis (publishing and subscribing clients).
pub(crate) static RECONNECTS: Counter = Counter::new();

/// What this process's Redis adapters have done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RedisStats {
    /// Publications handed to Redis.
    pub published: u64,
    /// Publications dropped: queue full (past its byte or count bound while
    /// Redis was away or slow) or failed.
    pub dropped: u64,
    /// Reconnections to Redis.
    pub reconnects: u64,
}

impl RedisStats {
    /// The counters now.
    pub fn now() -> RedisStats {
        RedisStats {
            published: PUBLISHED.get(),
            dropped: DROPPED.get(),
            reconnects: RECONNECTS.get(),
        }
    }
}
