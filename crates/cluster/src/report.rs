//! What a worker reports about itself when the master asks (for `/status`
//! and metrics): counters the master cannot see, since it never touches a
//! connection after the handoff.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A worker's counters, as it sends them to the master.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WorkerReport {
    /// Live sessions of every server and engine of the worker.
    pub(crate) sessions: u64,
    /// Connections closed because a write made no progress for the write
    /// stall limit (the client stopped reading).
    pub(crate) write_stalls: u64,
    /// WebSocket connections closed with messages unsent because their
    /// session ended.
    pub(crate) closed_with_unsent: u64,
    /// Messages refused because a session's send buffer was full.
    pub(crate) buffer_full: u64,
    /// Frames to the master dropped because the worker's outbox was full.
    pub(crate) control_frames_dropped: u64,
    /// Counters of the layer above (the Redis adapter's, say), by name.
    #[serde(default)]
    pub(crate) extra: BTreeMap<String, u64>,
}

/// Counters a worker reports besides the cluster's own, by name (given to
/// [`crate::ClusterBuilder::counters`]; the `iocluster` facade reports the
/// Redis adapter's this way).
pub type CounterSource = Arc<dyn Fn() -> Vec<(String, u64)> + Send + Sync>;
