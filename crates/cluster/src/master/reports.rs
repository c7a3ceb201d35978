//! Asking every worker for its counters (`/status`, metrics): one request
//! number per collection, answers gathered until every worker asked has
//! answered or a short deadline passes (a busy or dying worker costs the
//! scrape at most that long, and its counters are simply missing).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::mpsc;

use super::Master;
use crate::control::{Frame, MasterMessage};
use crate::report::WorkerReport;
use crate::sid::InstanceId;

/// The longest a collection waits for the workers' answers.
const REPORT_WAIT: Duration = Duration::from_millis(500);

/// Collections in flight.
#[derive(Debug, Default)]
pub(super) struct Reports {
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, mpsc::UnboundedSender<(InstanceId, WorkerReport)>>>,
}

impl Reports {
    fn waiting(
        &self,
    ) -> MutexGuard<'_, HashMap<u64, mpsc::UnboundedSender<(InstanceId, WorkerReport)>>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Master {
    /// Every ready worker's report, by instance; a worker that does not
    /// answer within [`REPORT_WAIT`] is left out.
    pub(super) async fn collect_reports(&self) -> HashMap<InstanceId, WorkerReport> {
        let request = self.reports.next.fetch_add(1, Ordering::Relaxed);
        let (sender, mut answers) = mpsc::unbounded_channel();
        self.reports.waiting().insert(request, sender);
        let mut expected = 0;
        for worker in self.table().workers.values().filter(|w| w.ready) {
            if worker
                .control
                .send(Frame::control(&MasterMessage::ReportRequest { request }))
            {
                expected += 1;
            }
        }
        let mut reports = HashMap::new();
        let deadline = tokio::time::Instant::now() + REPORT_WAIT;
        while reports.len() < expected {
            match tokio::time::timeout_at(deadline, answers.recv()).await {
                Ok(Some((instance, report))) => {
                    reports.insert(instance, report);
                }
                Ok(None) | Err(_) => break,
            }
        }
        self.reports.waiting().remove(&request);
        reports
    }

    /// A worker's answer to collection `request`.
    pub(super) fn on_report(&self, source: InstanceId, request: u64, report: WorkerReport) {
        if let Some(sender) = self.reports.waiting().get(&request) {
            let _ = sender.send((source, report));
        }
    }
}
