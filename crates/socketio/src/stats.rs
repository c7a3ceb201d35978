//! Counters of this process's Socket.IO servers, for status and metrics:
//! process-wide relaxed atomics, and one latency histogram of the requests
//! that go through the adapter (to every server of the fleet).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Broadcasts emitted by this process (to the adapter: every server).
pub(crate) static BROADCASTS: Counter = Counter::new();
/// Packets of broadcasts queued for this process's sockets (from this
/// process's broadcasts and other servers').
pub(crate) static DELIVERIES: Counter = Counter::new();
/// Emits with an ack that timed out (to one socket, or a broadcast whose
/// replies were not all in).
pub(crate) static ACK_TIMEOUTS: Counter = Counter::new();
/// Connections that asked for connection state recovery and got it.
pub(crate) static RECOVERED: Counter = Counter::new();
/// Connections that asked for recovery and did not get it.
pub(crate) static NOT_RECOVERED: Counter = Counter::new();

/// The upper bounds of the adapter latency buckets, in seconds.
pub const ADAPTER_LATENCY_BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];

/// Adapter requests (fetch sockets, broadcasts with acks, server-side
/// emits with acks, server counts) and how long they took.
pub(crate) static ADAPTER_REQUESTS: Histogram = Histogram::new();

/// A fixed-bucket latency histogram.
#[derive(Debug)]
pub(crate) struct Histogram {
    /// One count per bucket of [`ADAPTER_LATENCY_BUCKETS`], then +Inf.
    buckets: [AtomicU64; 11],
    sum_micros: AtomicU64,
}

impl Histogram {
    const fn new() -> Self {
        Histogram {
            buckets: [const { AtomicU64::new(0) }; 11],
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Counts one request that took `took`.
    pub(crate) fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = ADAPTER_LATENCY_BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(ADAPTER_LATENCY_BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    fn snapshot(&self) -> LatencySnapshot {
        let mut buckets = [0; 11];
        for (out, bucket) in buckets.iter_mut().zip(&self.buckets) {
            *out = bucket.load(Ordering::Relaxed);
        }
        LatencySnapshot {
            buckets,
            sum_seconds: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

/// A latency histogram's counts: per bucket of
/// [`ADAPTER_LATENCY_BUCKETS`] (not cumulative), then those above the last.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LatencySnapshot {
    /// Requests per bucket; the last is above every bound.
    pub buckets: [u64; 11],
    /// The sum of every request's duration, in seconds.
    pub sum_seconds: f64,
}

impl LatencySnapshot {
    /// How many requests.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }
}

/// What this process's Socket.IO servers have done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SocketIoStats {
    /// Broadcasts emitted.
    pub broadcasts: u64,
    /// Broadcast packets queued for local sockets.
    pub deliveries: u64,
    /// Emits with an ack that timed out.
    pub ack_timeouts: u64,
    /// Recovery attempts that recovered the socket.
    pub recovered: u64,
    /// Recovery attempts that did not.
    pub not_recovered: u64,
    /// Adapter requests and their latency.
    pub adapter_requests: LatencySnapshot,
}

impl SocketIoStats {
    /// The counters now.
    pub fn now() -> SocketIoStats {
        SocketIoStats {
            broadcasts: BROADCASTS.get(),
            deliveries: DELIVERIES.get(),
            ack_timeouts: ACK_TIMEOUTS.get(),
            recovered: RECOVERED.get(),
            not_recovered: NOT_RECOVERED.get(),
            adapter_requests: ADAPTER_REQUESTS.snapshot(),
        }
    }
}

/// Times an adapter request.
pub(crate) async fn timed<T>(request: impl std::future::Future<Output = T>) -> T {
    let started = std::time::Instant::now();
    let output = request.await;
    ADAPTER_REQUESTS.observe(started.elapsed());
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_lands_in_the_first_bucket_that_holds_it() {
        let histogram = Histogram::new();
        histogram.observe(Duration::from_micros(300));
        histogram.observe(Duration::from_millis(7));
        histogram.observe(Duration::from_secs(3));
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.buckets[0], 1, "0.3 ms <= 0.5 ms");
        assert_eq!(snapshot.buckets[4], 1, "7 ms <= 10 ms");
        assert_eq!(snapshot.buckets[10], 1, "3 s: above every bound");
        assert_eq!(snapshot.count(), 3);
        assert!((snapshot.sum_seconds - 3.0073).abs() < 1e-9);
    }
}
