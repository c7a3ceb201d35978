//! The admin endpoint: `GET /status` on a loopback address, per worker pid,
//! uptime, restarts, sessions and resident memory.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::routing::get;
use serde_json::{Value, json};

use super::Master;

pub(crate) async fn start(master: Arc<Master>, addr: SocketAddr) {
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::warn!(%addr, %error, "admin endpoint not started");
            return;
        }
    };
    if let Ok(local) = listener.local_addr() {
        println!("iocluster admin on http://{local}/status");
    }
    let app = Router::new().route(
        "/status",
        get(move || {
            let master = Arc::clone(&master);
            async move {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    status(&master).to_string(),
                )
            }
        }),
    );
    tokio::spawn(async move {
        let _ = iocluster_engineio::serve(listener, app).await;
    });
}

fn status(master: &Master) -> Value {
    let table = master.table();
    let mut workers: Vec<Value> = table
        .workers
        .iter()
        .map(|(instance, w)| {
            json!({
                "slot": w.slot,
                "instance": instance.0,
                "pid": w.pid,
                "ready": w.ready,
                "draining": w.draining,
                "uptime_secs": w.started.elapsed().as_secs(),
                "restarts": table.restarts.get(&w.slot).copied().unwrap_or(0),
                "sessions": w.sessions,
                "rss_bytes": rss_bytes(w.pid),
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

/// Resident memory of a process, from /proc.
pub(crate) fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
