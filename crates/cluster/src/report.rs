//! What a worker reports about itself when the master asks (for `/status`
//! and `/metrics`): what the master cannot see, since it never touches a
//! connection after the handoff.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::metrics::Metric;

/// A worker's report, as it sends it to the master.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct WorkerReport {
    /// Live sessions of every server and engine of the worker.
    pub(crate) sessions: u64,
    /// Its metric families (`/metrics` shows them with its slot as the
    /// `worker` label).
    pub(crate) metrics: Vec<Metric>,
}

impl WorkerReport {
    /// The value of the counter `name` (summed over its samples).
    pub(crate) fn counter(&self, name: &str) -> Option<u64> {
        self.metrics
            .iter()
            .find(|m| m.name == name)
            .and_then(Metric::counter_total)
    }
}

/// Metrics a worker reports besides the cluster's own (given to
/// [`crate::ClusterBuilder::counters`]; the `iocluster` facade reports the
/// Redis adapter's this way).
pub type CounterSource = Arc<dyn Fn() -> Vec<Metric> + Send + Sync>;
