//! A request of this worker's adapter to the other workers (or to the
//! master), waiting for its answers.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use iocluster_socketio::adapter::AdapterError;
use tokio::sync::mpsc;

use super::envelope::Header;

/// What a waiting request is told.
#[derive(Debug)]
pub(crate) enum Event {
    /// An answer from a worker.
    Answer {
        source: u32,
        header: Header,
        parts: Vec<Bytes>,
    },
    /// A worker is gone.
    Gone(u32),
    /// The master's recovery answer.
    Restored {
        record: Option<Bytes>,
        packets: Vec<Bytes>,
    },
}

/// The requests in flight, by number: where each one's events go.
#[derive(Debug, Default)]
pub(crate) struct Requests(Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Event>>>>);

impl Requests {
    /// The table, locked.
    pub(super) fn lock(&self) -> MutexGuard<'_, HashMap<u64, mpsc::UnboundedSender<Event>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens request `request`.
    pub(super) fn open(&self, request: u64) -> Pending {
        let (sender, events) = mpsc::unbounded_channel();
        self.lock().insert(request, sender);
        Pending {
            table: Requests(Arc::clone(&self.0)),
            request,
            events,
        }
    }
}

/// Removes a request's entry when its waiter is done.
pub(crate) struct Pending {
    table: Requests,
    pub(crate) request: u64,
    pub(crate) events: mpsc::UnboundedReceiver<Event>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.table.lock().remove(&self.request);
    }
}

impl Pending {
    /// Waits for one answer from each worker of `awaiting` (the workers
    /// alive when the request went out), within `timeout`: `take` is given
    /// each answer and says whether it is the one awaited; a worker that
    /// has no such namespace (`Absent`) or dies stops being awaited. The
    /// one wait of fetches and server-side emits; `Timeout` counts the
    /// workers that did not answer.
    pub(crate) async fn collect(
        &mut self,
        mut awaiting: HashSet<u32>,
        timeout: Duration,
        mut take: impl FnMut(Header, Vec<Bytes>) -> bool,
    ) -> Result<(), AdapterError> {
        let expected = awaiting.len();
        let deadline = tokio::time::Instant::now() + timeout;
        while !awaiting.is_empty() {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(Event::Gone(source)))
                | Ok(Some(Event::Answer {
                    source,
                    header: Header::Absent { .. },
                    ..
                })) => {
                    awaiting.remove(&source);
                }
                Ok(Some(Event::Answer {
                    source,
                    header,
                    parts,
                })) => {
                    if awaiting.contains(&source) && take(header, parts) {
                        awaiting.remove(&source);
                    }
                }
                Ok(Some(Event::Restored { .. })) => {}
                Ok(None) | Err(_) => {
                    return Err(AdapterError::Timeout {
                        received: expected - awaiting.len(),
                        expected,
                    });
                }
            }
        }
        Ok(())
    }
}
