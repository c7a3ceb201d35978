//! The master's view of its workers: who is ready, who owns which sessions
//! (by instance), how loaded each is.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::balance::Candidate;
use crate::handoff::HandoffSender;
use crate::outbox::Outbox;
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
    pub(crate) control: Outbox,
    pub(crate) ready: bool,
    pub(crate) draining: bool,
    pub(crate) sessions: usize,
    pub(crate) handed: VecDeque<Instant>,
    pub(crate) started: Instant,
}

/// The restarts of one slot.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Restarts {
    /// Restarts in a row, each after a worker that exited before
    /// `backoff_reset`: what the backoff doubles on.
    pub(crate) in_a_row: u32,
    /// Every restart since the master started.
    pub(crate) total: u32,
}

/// Every live worker, by instance.
#[derive(Debug, Default)]
pub(crate) struct Table {
    pub(crate) workers: HashMap<InstanceId, Worker>,
    pub(crate) restarts: HashMap<usize, Restarts>,
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

    /// Counts a restart of `slot`; `stable`: the worker that exited had
    /// stayed up long enough to reset the backoff. Returns the restarts in
    /// a row, this one included.
    pub(crate) fn record_restart(&mut self, slot: usize, stable: bool) -> u32 {
        let restarts = self.restarts.entry(slot).or_default();
        if stable {
            restarts.in_a_row = 0;
        }
        restarts.in_a_row += 1;
        restarts.total += 1;
        restarts.in_a_row
    }

    /// The restarts of `slot` as status shows them: in a row (zero again
    /// once the slot's worker has stayed up `backoff_reset`), and in all.
    pub(crate) fn restarts_shown(
        &self,
        slot: usize,
        uptime: Duration,
        backoff_reset: Duration,
    ) -> Restarts {
        let mut restarts = self.restarts.get(&slot).copied().unwrap_or_default();
        if uptime >= backoff_reset {
            restarts.in_a_row = 0;
        }
        restarts
    }

    /// The worker serving `slot` and taking new sessions.
    pub(crate) fn active_in_slot(&self, slot: usize) -> Option<InstanceId> {
        self.workers
            .iter()
            .find(|(_, w)| w.slot == slot && !w.draining)
            .map(|(instance, _)| *instance)
    }
}
