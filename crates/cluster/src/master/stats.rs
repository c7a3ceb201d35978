//! What the master counts itself: connections accepted and handed over,
//! heads refused, worker exits; and its metric families for `/metrics`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use super::Master;
use crate::metrics::{Labels, Metric, Scrape, label};
use crate::report::WorkerReport;
use crate::sid::InstanceId;

/// The master's counters.
#[derive(Debug, Default)]
pub(super) struct MasterStats {
    pub(super) accepted: AtomicU64,
    pub(super) handoffs: AtomicU64,
    /// Heads answered 400 (not HTTP), 431 (too large), 503 (no worker
    /// ready), or dropped for the head timeout.
    pub(super) bad_heads: AtomicU64,
    pub(super) large_heads: AtomicU64,
    pub(super) no_worker: AtomicU64,
    pub(super) head_timeouts: AtomicU64,
    /// Worker exits: status 0, another status, a signal.
    pub(super) exits_clean: AtomicU64,
    pub(super) exits_error: AtomicU64,
    pub(super) exits_signal: AtomicU64,
    /// Requests naming another node's session, handed to a worker that
    /// forwards them to that node.
    pub(super) forwarded: AtomicU64,
    /// Peer connections authenticated and handed to a worker, and peer
    /// connections refused (wrong or no secret, no handshake in time).
    pub(super) peer_handoffs: AtomicU64,
    pub(super) peers_refused: AtomicU64,
}

/// Adds one to a counter.
pub(super) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

impl MasterStats {
    /// Counts a worker's exit by its cause.
    pub(super) fn exited(&self, status: &std::io::Result<std::process::ExitStatus>) {
        use std::os::unix::process::ExitStatusExt;
        let counter = match status {
            Ok(status) if status.success() => &self.exits_clean,
            Ok(status) if status.signal().is_some() => &self.exits_signal,
            _ => &self.exits_error,
        };
        bump(counter);
    }
}

impl Master {
    /// The OpenMetrics text of the whole node: the master's families, then
    /// every worker's (labelled with its slot), from `reports`.
    pub(super) fn metrics_text(&self, reports: &HashMap<InstanceId, WorkerReport>) -> String {
        let mut scrape = Scrape::default();
        let none = Labels::new();
        for metric in self.master_metrics() {
            scrape.add(&none, metric);
        }
        let table = self.table();
        let mut workers: Vec<_> = table.workers.iter().collect();
        workers.sort_by_key(|(_, worker)| worker.slot);
        for (instance, worker) in workers {
            let slot = vec![label("worker", worker.slot)];
            for metric in process_metrics(worker.pid, Labels::new()) {
                scrape.add(&slot, metric);
            }
            scrape.add(
                &slot,
                Metric::counters(
                    "iocluster_control_frames_dropped",
                    "Control frames dropped because their queue was full, by direction.",
                    vec![(
                        vec![label("direction", "to_worker")],
                        worker.control.dropped(),
                    )],
                ),
            );
            if let Some(report) = reports.get(instance) {
                for metric in report.metrics.iter().cloned() {
                    scrape.add(&slot, metric);
                }
            }
        }
        drop(table);
        scrape.encode()
    }

    fn master_metrics(&self) -> Vec<Metric> {
        let stats = &self.stats;
        let table = self.table();
        let ready = table.workers.values().filter(|w| w.ready).count();
        let mut restarts: Vec<_> = table
            .restarts
            .iter()
            .map(|(slot, restarts)| (vec![label("worker", slot)], u64::from(restarts.total)))
            .collect();
        restarts.sort();
        drop(table);
        let mut metrics = vec![
            Metric::counter(
                "iocluster_connections_accepted",
                "Connections the master accepted.",
                get(&stats.accepted),
            ),
            Metric::counter(
                "iocluster_handoffs",
                "Connections handed to a worker.",
                get(&stats.handoffs),
            ),
            Metric::counters(
                "iocluster_head_errors",
                "Connections the master answered itself or dropped before routing, by status: 400 (not HTTP/1.x), 431 (head too large), 503 (no worker ready), timeout (no whole head in time).",
                vec![
                    (vec![label("status", "400")], get(&stats.bad_heads)),
                    (vec![label("status", "431")], get(&stats.large_heads)),
                    (vec![label("status", "503")], get(&stats.no_worker)),
                    (vec![label("status", "timeout")], get(&stats.head_timeouts)),
                ],
            ),
            Metric::counter(
                "iocluster_forwarded_connections",
                "Connections whose first request names another node's session, handed to a worker that forwards them to that node.",
                get(&stats.forwarded),
            ),
            Metric::counters(
                "iocluster_peer_connections",
                "Connections on the peer port, by result: accepted (authenticated and handed to a worker) or refused.",
                vec![
                    (vec![label("result", "accepted")], get(&stats.peer_handoffs)),
                    (vec![label("result", "refused")], get(&stats.peers_refused)),
                ],
            ),
            Metric::gauges(
                "iocluster_workers_ready",
                "Workers ready to serve.",
                vec![(Vec::new(), ready as i64)],
            ),
            Metric::counters(
                "iocluster_worker_restarts",
                "Workers restarted after an exit, by slot.",
                restarts,
            ),
            Metric::counters(
                "iocluster_worker_exits",
                "Worker exits, by cause: clean (status 0), error (another status), signal.",
                vec![
                    (vec![label("cause", "clean")], get(&stats.exits_clean)),
                    (vec![label("cause", "error")], get(&stats.exits_error)),
                    (vec![label("cause", "signal")], get(&stats.exits_signal)),
                ],
            ),
        ];
        metrics.extend(process_metrics(
            std::process::id(),
            vec![label("worker", "master")],
        ));
        metrics
    }
}

/// A process's resident memory and open descriptors, from /proc, with
/// `labels` on each sample.
fn process_metrics(pid: u32, labels: Labels) -> Vec<Metric> {
    let rss = super::admin::rss_bytes(pid).unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |entries| entries.count());
    vec![
        Metric::gauges(
            "iocluster_process_resident_memory_bytes",
            "Resident memory of the master and of each worker.",
            vec![(labels.clone(), i64::try_from(rss).unwrap_or(i64::MAX))],
        ),
        Metric::gauges(
            "iocluster_process_open_fds",
            "Open file descriptors of the master and of each worker.",
            vec![(labels, fds as i64)],
        ),
    ]
}
