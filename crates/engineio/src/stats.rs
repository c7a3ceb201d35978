//! Counters of what this process's engines had to cut or refuse, for
//! status and metrics: process-wide, relaxed atomics (a counter costs one
//! uncontended add where it happens; readers take a snapshot).

use std::sync::atomic::{AtomicU64, Ordering};

/// One process-wide counter.
#[derive(Debug)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    const fn new() -> Self {
        Counter(AtomicU64::new(0))
    }

    /// Adds one.
    pub(crate) fn increment(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Connections closed because a write made no progress for the
/// connection's `write_stall` limit (the client stopped reading).
pub(crate) static WRITE_STALLS: Counter = Counter::new();
/// WebSocket connections closed at once, with messages still unsent,
/// because their session ended (heartbeat, server close, shutdown).
pub(crate) static CLOSED_WITH_UNSENT: Counter = Counter::new();
/// Messages refused because a session's send buffer was full (by count or
/// by bytes): the client does not read fast enough.
pub(crate) static BUFFER_FULL: Counter = Counter::new();

/// What this process's engines have cut or refused so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Connections closed because a write made no progress for the
    /// connection's write-stall limit.
    pub write_stalls: u64,
    /// WebSocket connections closed with messages unsent because their
    /// session ended.
    pub closed_with_unsent: u64,
    /// Messages refused because a session's send buffer was full.
    pub buffer_full: u64,
}

impl EngineStats {
    /// The counters now.
    pub fn now() -> EngineStats {
        EngineStats {
            write_stalls: WRITE_STALLS.get(),
            closed_with_unsent: CLOSED_WITH_UNSENT.get(),
            buffer_full: BUFFER_FULL.get(),
        }
    }
}
