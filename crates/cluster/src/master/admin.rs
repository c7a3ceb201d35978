//! The admin endpoint: `GET /metrics` (the whole node, OpenMetrics text:
//! see `stats.rs`) and `GET /status` on a loopback address, per worker pid,
//! uptime, restarts, sessions, resident memory, the control queue, and the
//! counters the worker reports (connections cut for stalled writes or
//! closed with messages unsent, messages refused on a full send buffer).
//!
//! `restarts` counts the slot's restarts in a row, as the backoff does: it
//! is zero again once the slot's worker has stayed up `backoff_reset`
//! (30 s), so a slot that crashed once last week reads as healthy;
//! `restarts_total` counts every restart since the master started.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::routing::get;
use serde_json::{Value, json};

use tokio::net::TcpListener;

use super::Master;
use crate::ClusterError;
use crate::report::WorkerReport;
use crate::sid::InstanceId;

/// Binds the admin endpoint: an address in use is an error at startup, not
/// a warning and a master running without it.
pub(super) async fn bind(addr: SocketAddr) -> Result<TcpListener, ClusterError> {
    TcpListener::bind(addr)
        .await
        .map_err(|error| ClusterError::Admin { addr, error })
}

/// Serves `/status` on the bound admin listener.
pub(super) fn serve(master: Arc<Master>, listener: TcpListener) {
    if let Ok(local) = listener.local_addr() {
        println!("iocluster admin on http://{local}/status");
    }
    let status_master = Arc::clone(&master);
    let app = Router::new()
        .route(
            "/status",
            get(move || {
                let master = Arc::clone(&status_master);
                async move {
                    let reports = master.collect_reports().await;
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        status(&master, &reports).to_string(),
                    )
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let master = Arc::clone(&master);
                async move {
                    let reports = master.collect_reports().await;
                    (
                        [(
                            header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        master.metrics_text(&reports),
                    )
                }
            }),
        );
    tokio::spawn(async move {
        let _ = iocluster_engineio::serve(listener, app).await;
    });
}

fn status(master: &Master, reports: &HashMap<InstanceId, WorkerReport>) -> Value {
    let table = master.table();
    let mut workers: Vec<Value> = table
        .workers
        .iter()
        .map(|(instance, w)| {
            let uptime = w.started.elapsed();
            let restarts = table.restarts_shown(w.slot, uptime, master.config.backoff_reset);
            json!({
                "slot": w.slot,
                "instance": instance.0,
                "pid": w.pid,
                "ready": w.ready,
                "draining": w.draining,
                "uptime_secs": uptime.as_secs(),
                "restarts": restarts.in_a_row,
                "restarts_total": restarts.total,
                "sessions": w.sessions,
                "control_queued_bytes": w.control.queued_bytes(),
                "control_frames_dropped": w.control.dropped(),
                "rss_bytes": rss_bytes(w.pid),
                // What the worker counted itself; null when it did not
                // answer in time.
                "write_stalls": counter(reports.get(instance), "iocluster_write_stalls"),
                "closed_with_unsent": counter(reports.get(instance), "iocluster_closed_with_unsent"),
                "buffer_full": counter(reports.get(instance), "iocluster_send_buffer_full"),
                "frames_dropped_to_master": counter(reports.get(instance), "iocluster_control_frames_dropped"),
                "counters": reports.get(instance).map(counters),
            })
        })
        .collect();
    workers.sort_by_key(|w| w["slot"].as_u64());
    json!({
        "master": { "pid": std::process::id(), "uptime_secs": master.started.elapsed().as_secs(), "rss_bytes": rss_bytes(std::process::id()) },
        "balance": master.config.balance,
        "workers": workers,
    })
}

/// A counter of a worker's report, when it answered.
fn counter(report: Option<&WorkerReport>, name: &str) -> Option<u64> {
    report.and_then(|report| report.counter(name))
}

/// Every counter of a worker's report, by name.
fn counters(report: &WorkerReport) -> serde_json::Map<String, Value> {
    report
        .metrics
        .iter()
        .filter_map(|m| Some((m.name.clone(), Value::from(m.counter_total()?))))
        .collect()
}

/// Resident memory of a process, from /proc.
pub(crate) fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
