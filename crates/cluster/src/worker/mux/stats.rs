//! What the links of this worker did, for `/metrics`: how many it opened
//! and tunnels in them, and frames against writes (how many forwarded
//! requests or answers one write carries: the batching the links are for).

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

use crate::metrics::{Metric, label};

/// Links this worker opened to other nodes' workers.
pub(super) static LINKS: AtomicU64 = AtomicU64::new(0);
/// Tunnels this worker opened in them.
pub(super) static TUNNELS: AtomicU64 = AtomicU64::new(0);
/// Frames queued on this worker's links, both sides.
pub(super) static FRAMES: AtomicU64 = AtomicU64::new(0);
/// Writes that carried them.
pub(super) static WRITES: AtomicU64 = AtomicU64::new(0);

/// The links' metric families.
pub(crate) fn metrics() -> Vec<Metric> {
    vec![
        Metric::counter(
            "iocluster_peer_links_opened",
            "Links this worker opened to workers of other nodes (one per owning worker while it lives).",
            LINKS.load(Relaxed),
        ),
        Metric::counter(
            "iocluster_peer_tunnels_opened",
            "Tunnels opened in them (WebSocket upgrades, large or streamed bodies).",
            TUNNELS.load(Relaxed),
        ),
        Metric::counters(
            "iocluster_peer_link_io",
            "Frames queued on this worker's links (requests, answers, tunnel data, both sides) and the writes that carried them.",
            vec![
                (vec![label("what", "frames")], FRAMES.load(Relaxed)),
                (vec![label("what", "writes")], WRITES.load(Relaxed)),
            ],
        ),
    ]
}
