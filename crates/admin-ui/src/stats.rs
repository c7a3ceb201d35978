//! `server_stats`, emitted by every server to the admin namespace of every
//! server every `stats_interval` (Node's `initStatsEmitter`): the UI learns
//! of each server, wherever it is connected, by these broadcasts, and adds
//! them up by `serverId`.
//!
//! `aggregatedEvents` are Node's `EventBuffer` entries (`rawConnection`,
//! `rawDisconnection`, `packetsIn`/`Out`, `bytesIn`/`Out`, each counted per
//! second). Node counts them with a listener on every engine socket; we
//! read the engine's process-wide counters at each tick and send what
//! changed since the last one, under the tick's second: nothing per packet.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use iocluster_engineio::EngineStats;
use iocluster_socketio::Server;
use serde_json::{Value, json};

/// What a server says of itself in each `server_stats`.
pub(crate) struct Identity {
    pub(crate) server_id: String,
    pub(crate) hostname: String,
    pub(crate) pid: u32,
    pub(crate) started: Instant,
}

/// The engine's counters at the previous tick.
pub(crate) struct Aggregator {
    previous: EngineStats,
    previous_sessions: usize,
}

impl Aggregator {
    pub(crate) fn new(io: &Server) -> Aggregator {
        Aggregator {
            previous: EngineStats::now(),
            previous_sessions: io.engine().session_count(),
        }
    }

    /// The events since the previous call, stamped with this second.
    fn take(&mut self, sessions: usize, now: SystemTime) -> Vec<Value> {
        let stats = EngineStats::now();
        let before = std::mem::replace(&mut self.previous, stats);
        let sessions_before = std::mem::replace(&mut self.previous_sessions, sessions);
        let opened = stats.sessions_opened.saturating_sub(before.sessions_opened);
        // Sessions now = before + opened - closed.
        let closed = (sessions_before as u64 + opened).saturating_sub(sessions as u64);
        let second = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() * 1000);
        [
            ("rawConnection", opened),
            ("rawDisconnection", closed),
            (
                "packetsIn",
                stats
                    .messages_received
                    .saturating_sub(before.messages_received),
            ),
            (
                "bytesIn",
                stats.bytes_received.saturating_sub(before.bytes_received),
            ),
            (
                "packetsOut",
                stats.messages_sent.saturating_sub(before.messages_sent),
            ),
            (
                "bytesOut",
                stats.bytes_sent.saturating_sub(before.bytes_sent),
            ),
        ]
        .into_iter()
        .filter(|(_, count)| *count > 0)
        .map(|(kind, count)| json!({ "timestamp": second, "type": kind, "count": count }))
        .collect()
    }
}

/// One `server_stats` payload (`ServerStats` of `lib/typed-events.ts`, plus
/// `aggregatedEvents`).
pub(crate) fn server_stats(io: &Server, identity: &Identity, aggregator: &mut Aggregator) -> Value {
    let engine = io.engine();
    let (polling, websocket) = engine.sessions_by_transport();
    let clients = polling + websocket;
    let mut namespaces: Vec<Value> = io
        .namespaces()
        .iter()
        .map(|ns| json!({ "name": ns.name(), "socketsCount": ns.sockets().len() }))
        .collect();
    namespaces.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    json!({
        "serverId": identity.server_id,
        "hostname": identity.hostname,
        "pid": identity.pid,
        "uptime": identity.started.elapsed().as_secs_f64(),
        "clientsCount": clients,
        "pollingClientsCount": polling,
        "aggregatedEvents": aggregator.take(clients, SystemTime::now()),
        "namespaces": namespaces,
    })
}
