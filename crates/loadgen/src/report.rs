//! The result of a run: one JSON object (for scripts) and a readable
//! summary (for people).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::client::TransportKind;
use crate::error::ErrorCounts;
use crate::latency::{LatencyRecorder, Percentiles};

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `handshake`, `echo`, `fanout` or `hold`.
    pub scenario: &'static str,
    /// The server.
    pub url: String,
    /// Loopback source addresses used.
    pub sources: usize,
    /// The measured phase asked for, in seconds.
    pub duration_s: f64,
    /// The measured phase as it ran (until the last client stopped).
    pub elapsed_s: f64,
    /// What `completed` counts: `sessions`, `acks`, `deliveries`.
    pub unit: &'static str,
    /// Sessions, acks or deliveries completed.
    pub completed: u64,
    /// `completed` per second of `elapsed_s`.
    pub per_second: f64,
    /// The main latency: open (handshake, hold), ack (echo), delivery
    /// (fanout).
    pub latency: Option<Percentiles>,
    /// Protocol errors by kind (`connect_refused`, `http_status_503`,
    /// `session_id_unknown`, `timeout`, `unexpected_packet`, `closed`, ...).
    pub errors: BTreeMap<String, u64>,
    /// All protocol errors.
    pub error_total: u64,
    /// The first few error messages.
    pub error_examples: Vec<String>,
    /// What only this scenario measures.
    #[serde(flatten)]
    pub details: Details,
}

/// Scenario-specific figures (flattened into the report's JSON).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Details {
    /// `handshake`.
    Handshake(HandshakeDetails),
    /// `echo`.
    Echo(EchoDetails),
    /// `fanout`.
    Fanout(FanoutDetails),
    /// `hold`.
    Hold(HoldDetails),
}

/// Figures of the `handshake` scenario.
#[derive(Debug, Clone, Serialize)]
pub struct HandshakeDetails {
    /// `browser`, `websocket` or `polling`.
    pub mode: &'static str,
    /// Sessions in flight at once.
    pub concurrency: usize,
    /// Browser mode: from the first request to the upgrade done (`5`).
    pub upgraded_latency: Option<Percentiles>,
    /// The close of a session, from its first request to its last answer
    /// (over polling: the POSTs of `41` and `1` and the pending GET).
    pub close_latency: Option<Percentiles>,
}

/// Figures of the `echo` scenario.
#[derive(Debug, Clone, Serialize)]
pub struct EchoDetails {
    /// The transport.
    pub transport: TransportKind,
    /// Clients asked for.
    pub clients: usize,
    /// Clients that connected.
    pub connected: usize,
    /// Bytes of the echoed string.
    pub payload_bytes: usize,
}

/// Figures of the `fanout` scenario.
#[derive(Debug, Clone, Serialize)]
pub struct FanoutDetails {
    /// Receiving clients asked for.
    pub clients: usize,
    /// Receiving clients that connected.
    pub connected: usize,
    /// Broadcasts per second asked for (0: as fast as they are acked).
    pub rate: f64,
    /// Broadcasts sent (and acked).
    pub broadcasts: u64,
    /// Deliveries expected: broadcasts × receivers alive.
    pub deliveries_expected: u64,
    /// Expected deliveries that did not arrive before the drain ended.
    pub deliveries_missing: u64,
    /// The sender's broadcast-to-ack latency.
    pub ack_latency: Option<Percentiles>,
}

/// Figures of the `hold` scenario.
#[derive(Debug, Clone, Serialize)]
pub struct HoldDetails {
    /// Sessions asked for.
    pub clients: usize,
    /// Sessions that opened.
    pub open: usize,
    /// Sessions still open at the end of the hold.
    pub open_at_end: usize,
    /// Pings answered by the clients during the hold.
    pub pings_answered: u64,
    /// The processes measured (at the second reading).
    pub pids: Vec<u32>,
    /// Their resident memory before any session was opened.
    pub rss_before_bytes: Option<u64>,
    /// Their resident memory once every session was open.
    pub rss_after_bytes: Option<u64>,
    /// Their resident memory at the end of the hold.
    pub rss_end_bytes: Option<u64>,
    /// (after − before) / open.
    pub bytes_per_session: Option<f64>,
}

impl Report {
    /// A report of `completed` `unit`s over `elapsed`, with the run's
    /// errors and main latency.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        scenario: &'static str,
        url: String,
        sources: usize,
        duration: Duration,
        elapsed: Duration,
        unit: &'static str,
        completed: u64,
        latency: &LatencyRecorder,
        errors: &ErrorCounts,
        details: Details,
    ) -> Report {
        let seconds = elapsed.as_secs_f64();
        Report {
            scenario,
            url,
            sources,
            duration_s: duration.as_secs_f64(),
            elapsed_s: seconds,
            unit,
            completed,
            per_second: if seconds > 0.0 {
                completed as f64 / seconds
            } else {
                0.0
            },
            latency: latency.percentiles(),
            errors: errors.by_kind(),
            error_total: errors.total(),
            error_examples: errors.examples(),
            details,
        }
    }

    /// The report as one line of JSON.
    pub fn to_json_line(&self) -> String {
        // A struct of numbers, strings and maps with string keys always
        // serializes.
        serde_json::to_string(self).unwrap_or_else(|error| format!("{{\"error\":\"{error}\"}}"))
    }

    /// A few lines for people.
    pub fn summary(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(
            text,
            "{} against {} ({} source addresses): {} {} in {:.2} s = {:.1} {}/s",
            self.scenario,
            self.url,
            self.sources,
            self.completed,
            self.unit,
            self.elapsed_s,
            self.per_second,
            self.unit
        );
        if let Some(p) = &self.latency {
            let _ = writeln!(text, "  latency: {}", percentiles_line(p));
        }
        match &self.details {
            Details::Handshake(d) => {
                let _ = writeln!(text, "  mode {}, concurrency {}", d.mode, d.concurrency);
                if let Some(p) = &d.upgraded_latency {
                    let _ = writeln!(text, "  open to upgraded: {}", percentiles_line(p));
                }
                if let Some(p) = &d.close_latency {
                    let _ = writeln!(text, "  close: {}", percentiles_line(p));
                }
            }
            Details::Echo(d) => {
                let _ = writeln!(
                    text,
                    "  {:?}, {} of {} clients connected, payload {} B",
                    d.transport, d.connected, d.clients, d.payload_bytes
                );
            }
            Details::Fanout(d) => {
                let _ = writeln!(
                    text,
                    "  {} of {} receivers, {} broadcasts (rate {}), {} of {} deliveries missing",
                    d.connected,
                    d.clients,
                    d.broadcasts,
                    d.rate,
                    d.deliveries_missing,
                    d.deliveries_expected
                );
                if let Some(p) = &d.ack_latency {
                    let _ = writeln!(text, "  broadcast ack: {}", percentiles_line(p));
                }
            }
            Details::Hold(d) => {
                let _ = writeln!(
                    text,
                    "  {} of {} sessions open ({} at the end), {} pings answered",
                    d.open, d.clients, d.open_at_end, d.pings_answered
                );
                if let (Some(before), Some(after), Some(per)) =
                    (d.rss_before_bytes, d.rss_after_bytes, d.bytes_per_session)
                {
                    let _ = writeln!(
                        text,
                        "  RSS of {} processes: {:.1} MiB before, {:.1} MiB with the sessions: {:.0} bytes/session",
                        d.pids.len(),
                        before as f64 / 1048576.0,
                        after as f64 / 1048576.0,
                        per
                    );
                }
            }
        }
        if self.error_total == 0 {
            let _ = writeln!(text, "  no protocol errors");
        } else {
            let _ = writeln!(
                text,
                "  {} protocol errors: {:?}",
                self.error_total, self.errors
            );
            for example in &self.error_examples {
                let _ = writeln!(text, "    e.g. {example}");
            }
        }
        text
    }
}

/// `p50 1.23 ms, p99 ..., p99.9 ..., max ... (n samples)`.
fn percentiles_line(p: &Percentiles) -> String {
    format!(
        "p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms ({} samples)",
        p.p50_ms, p.p99_ms, p.p999_ms, p.max_ms, p.count
    )
}
