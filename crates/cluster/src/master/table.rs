//! The master's view of its workers: who is ready, who owns which sessions
//! (by instance), how loaded each is.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::balance::Candidate;
use crate::control::Frame;
use crate::handoff::HandoffSender;
use crate::sid::InstanceId;

/// How long a handed-over connection counts toward a worker's load before
/// the worker reports a session for it.
const HANDED_WINDOW: Duration = Duration::from_secs(1);

/// One live worker process.
#[derive(Debug)]
pub(crate) struct Worker {
    pub(crate) slot: usize,
    pub(crate) pid: u32,
    pub(crate) handoff: Arc<HandoffSender>,
    pub(crate) control: mpsc::Sender<Frame>,
    pub(crate) ready: bool,
    pub(crate) draining: bool,
    pub(crate) sessions: usize,
    pub(crate) handed: VecDeque<Instant>,
    pub(crate) started: Instant,
}

/// Every live worker, by instance.
#[derive(Debug, Default)]
pub(crate) struct Table {
    pub(crate) workers: HashMap<InstanceId, Worker>,
    pub(crate) restarts: HashMap<usize, u32>,
}

impl Table {
    /// Whether any worker takes new connections.
    pub(crate) fn any_ready(&self) -> bool {
        self.workers.values().any(|w| w.ready && !w.draining)
    }

    /// The workers that take new sessions, in slot order, with their load.
    pub(crate) fn candidates(&mut self, now: Instant) -> Vec<(InstanceId, Candidate)> {
        let mut candidates: Vec<(InstanceId, Candidate)> = self
            .workers
            .iter_mut()
            .filter(|(_, w)| w.ready && !w.draining)
            .map(|(instance, w)| {
                while w
                    .handed
                    .front()
                    .is_some_and(|at| now.duration_since(*at) > HANDED_WINDOW)
                {
                    w.handed.pop_front();
                }
                (
                    *instance,
                    Candidate {
                        slot: w.slot,
                        load: w.sessions + w.handed.len(),
                    },
                )
            })
            .collect();
        candidates.sort_by_key(|(_, c)| c.slot);
        candidates
    }

    /// The worker serving `slot` and taking new sessions.
    pub(crate) fn active_in_slot(&self, slot: usize) -> Option<InstanceId> {
        self.workers
            .iter()
            .find(|(_, w)| w.slot == slot && !w.draining)
            .map(|(instance, _)| *instance)
    }
}
