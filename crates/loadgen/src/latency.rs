//! Latency recording and percentiles, on `hdrhistogram`.
//!
//! One histogram per run, shared by its client tasks behind a short-held
//! lock: a histogram with 3 significant digits over 1 µs ..= 60 s is about
//! 100 KiB, too much to keep one per client for thousands of clients, and
//! recording is a few nanoseconds, so the lock is never held long.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// The largest latency recorded exactly, in microseconds (60 s); larger
/// ones are recorded as this.
const HIGHEST_MICROS: u64 = 60_000_000;

/// Significant digits kept (values within 0.1 %).
const SIGNIFICANT_DIGITS: u8 = 3;

/// Latencies of one run, in microseconds; cheap to clone and share.
#[derive(Debug, Clone)]
pub struct LatencyRecorder {
    histogram: Arc<Mutex<Histogram<u64>>>,
}

impl Default for LatencyRecorder {
    fn default() -> LatencyRecorder {
        LatencyRecorder::new()
    }
}

impl LatencyRecorder {
    /// An empty recorder for 1 µs ..= 60 s.
    pub fn new() -> LatencyRecorder {
        // The bounds are constants within hdrhistogram's limits.
        let histogram = Histogram::new_with_bounds(1, HIGHEST_MICROS, SIGNIFICANT_DIGITS)
            .unwrap_or_else(|_| unreachable!("constant histogram bounds are valid"));
        LatencyRecorder {
            histogram: Arc::new(Mutex::new(histogram)),
        }
    }

    /// Records one latency (below 1 µs counts as 1 µs, above 60 s as 60 s).
    pub fn record(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(1, HIGHEST_MICROS);
        let mut histogram = self.histogram.lock().unwrap_or_else(|p| p.into_inner());
        histogram.saturating_record(micros);
    }

    /// How many latencies were recorded.
    pub fn count(&self) -> u64 {
        self.histogram
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// The percentiles so far; `None` if nothing was recorded.
    pub fn percentiles(&self) -> Option<Percentiles> {
        let histogram = self.histogram.lock().unwrap_or_else(|p| p.into_inner());
        if histogram.is_empty() {
            return None;
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        Some(Percentiles {
            count: histogram.len(),
            mean_ms: histogram.mean() / 1000.0,
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            p999_ms: ms(histogram.value_at_quantile(0.999)),
            max_ms: ms(histogram.max()),
        })
    }
}

/// Percentiles of a run's latencies, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    /// Latencies recorded.
    pub count: u64,
    /// The mean.
    pub mean_ms: f64,
    /// The median.
    pub p50_ms: f64,
    /// The 99th percentile.
    pub p99_ms: f64,
    /// The 99.9th percentile.
    pub p999_ms: f64,
    /// The largest.
    pub max_ms: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64) -> bool {
        (actual - expected).abs() <= expected * 0.002 + 0.001
    }

    #[test]
    fn empty_recorder_has_no_percentiles() {
        assert!(LatencyRecorder::new().percentiles().is_none());
    }

    #[test]
    fn uniform_latencies_give_their_percentiles() {
        let recorder = LatencyRecorder::new();
        for micros in 1..=10_000 {
            recorder.record(Duration::from_micros(micros));
        }
        let p = recorder.percentiles().unwrap();
        assert_eq!(p.count, 10_000);
        assert!(close(p.p50_ms, 5.0), "p50 {}", p.p50_ms);
        assert!(close(p.p99_ms, 9.9), "p99 {}", p.p99_ms);
        assert!(close(p.p999_ms, 9.99), "p999 {}", p.p999_ms);
        assert!(close(p.max_ms, 10.0), "max {}", p.max_ms);
        assert!(close(p.mean_ms, 5.0005), "mean {}", p.mean_ms);
    }

    #[test]
    fn a_slow_tail_shows_in_p99_but_not_p50() {
        let recorder = LatencyRecorder::new();
        for _ in 0..98 {
            recorder.record(Duration::from_millis(1));
        }
        for _ in 0..2 {
            recorder.record(Duration::from_millis(200));
        }
        let p = recorder.percentiles().unwrap();
        assert!(close(p.p50_ms, 1.0));
        assert!(close(p.p99_ms, 200.0), "p99 {}", p.p99_ms);
    }

    #[test]
    fn out_of_range_latencies_are_clamped_not_lost() {
        let recorder = LatencyRecorder::new();
        recorder.record(Duration::ZERO);
        recorder.record(Duration::from_secs(3600));
        let p = recorder.percentiles().unwrap();
        assert_eq!(p.count, 2);
        assert!(close(p.max_ms, 60_000.0), "max {}", p.max_ms);
    }

    #[test]
    fn clones_record_into_the_same_histogram() {
        let recorder = LatencyRecorder::new();
        let other = recorder.clone();
        other.record(Duration::from_millis(3));
        assert_eq!(recorder.count(), 1);
    }
}
