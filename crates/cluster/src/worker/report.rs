//! The metric families a worker reports: its engines' traffic and cuts, its
//! Socket.IO servers' sockets, broadcasts, acks, recoveries and adapter
//! requests, and whatever the layer above adds (the Redis adapter's).

use iocluster_engineio::EngineStats;
use iocluster_socketio::{ADAPTER_LATENCY_BUCKETS, SocketIoStats};

use super::context::{WorkerContext, lock};
use crate::metrics::{Metric, label};
use crate::report::WorkerReport;

impl WorkerContext {
    /// This worker's report, for the master.
    pub(crate) fn report(&self) -> WorkerReport {
        let mut metrics = self.session_metrics();
        metrics.extend(engine_metrics(&EngineStats::now()));
        metrics.extend(socketio_metrics(&SocketIoStats::now()));
        metrics.push(request_metric());
        metrics.extend(super::mux::stats::metrics());
        for source in &self.counters {
            metrics.extend(source());
        }
        WorkerReport {
            sessions: self.session_count() as u64,
            metrics,
        }
    }

    /// Live sessions by transport, and sockets by namespace.
    fn session_metrics(&self) -> Vec<Metric> {
        let (mut polling, mut websocket) = (0, 0);
        let mut sockets = std::collections::BTreeMap::<String, i64>::new();
        for server in lock(&self.servers).iter() {
            let (p, w) = server.engine().sessions_by_transport();
            polling += p;
            websocket += w;
            for namespace in server.namespaces() {
                *sockets.entry(namespace.name().to_owned()).or_default() +=
                    namespace.sockets().len() as i64;
            }
        }
        for engine in lock(&self.engines).iter() {
            let (p, w) = engine.sessions_by_transport();
            polling += p;
            websocket += w;
        }
        vec![
            Metric::gauges(
                "iocluster_sessions",
                "Live Engine.IO sessions, by transport.",
                vec![
                    (vec![label("transport", "polling")], polling as i64),
                    (vec![label("transport", "websocket")], websocket as i64),
                ],
            ),
            Metric::gauges(
                "iocluster_sockets",
                "Connected Socket.IO sockets, by namespace.",
                sockets
                    .into_iter()
                    .map(|(namespace, count)| (vec![label("namespace", namespace)], count))
                    .collect(),
            ),
        ]
    }
}

/// The requests of the public port, by who served them.
fn request_metric() -> Metric {
    use std::sync::atomic::Ordering::Relaxed;

    use super::proxy::{REQUESTS_SERVED, REQUESTS_TO_NODE, REQUESTS_TO_WORKER};
    Metric::counters(
        "iocluster_requests",
        "HTTP requests on the public port (a WebSocket counts once), by who served them: this worker (`here`), another worker of this node (`worker`), or the node that owns the session (`node`: forwarded over a peer link).",
        vec![
            (
                vec![label("served_by", "here")],
                REQUESTS_SERVED.load(Relaxed),
            ),
            (
                vec![label("served_by", "worker")],
                REQUESTS_TO_WORKER.load(Relaxed),
            ),
            (
                vec![label("served_by", "node")],
                REQUESTS_TO_NODE.load(Relaxed),
            ),
        ],
    )
}

fn engine_metrics(stats: &EngineStats) -> Vec<Metric> {
    vec![
        Metric::counter(
            "iocluster_sessions_opened",
            "Engine.IO sessions opened.",
            stats.sessions_opened,
        ),
        Metric::counter(
            "iocluster_upgrades",
            "Polling sessions upgraded to WebSocket.",
            stats.upgrades,
        ),
        Metric::counter(
            "iocluster_messages_received",
            "Engine.IO messages received from clients.",
            stats.messages_received,
        ),
        Metric::counter(
            "iocluster_received_bytes",
            "Bytes of the messages received from clients.",
            stats.bytes_received,
        ),
        Metric::counter(
            "iocluster_messages_sent",
            "Engine.IO messages written to clients.",
            stats.messages_sent,
        ),
        Metric::counter(
            "iocluster_sent_bytes",
            "Bytes of the messages written to clients.",
            stats.bytes_sent,
        ),
        Metric::counter(
            "iocluster_send_buffer_full",
            "Messages refused because a client's send buffer was full (the client reads too slowly).",
            stats.buffer_full,
        ),
        Metric::counter(
            "iocluster_write_stalls",
            "Connections closed because a write made no progress for ping interval + ping timeout.",
            stats.write_stalls,
        ),
        Metric::counter(
            "iocluster_closed_with_unsent",
            "WebSocket connections closed with messages unsent because their session ended.",
            stats.closed_with_unsent,
        ),
    ]
}

fn socketio_metrics(stats: &SocketIoStats) -> Vec<Metric> {
    let latency = &stats.adapter_requests;
    vec![
        Metric::counter(
            "iocluster_broadcasts",
            "Broadcasts emitted by this worker.",
            stats.broadcasts,
        ),
        Metric::counter(
            "iocluster_broadcast_deliveries",
            "Broadcast packets queued for this worker's sockets (from any server).",
            stats.deliveries,
        ),
        Metric::counter(
            "iocluster_ack_timeouts",
            "Emits with an ack that timed out.",
            stats.ack_timeouts,
        ),
        Metric::counters(
            "iocluster_recovery_attempts",
            "Connections that asked for connection state recovery, by result.",
            vec![
                (vec![label("result", "recovered")], stats.recovered),
                (vec![label("result", "not_recovered")], stats.not_recovered),
            ],
        ),
        Metric::histogram(
            "iocluster_adapter_request_duration_seconds",
            "Requests to every server through the adapter (fetch sockets, broadcasts and server-side emits with acks, server counts).",
            &ADAPTER_LATENCY_BUCKETS,
            &latency.buckets,
            latency.sum_seconds,
        ),
    ]
}
