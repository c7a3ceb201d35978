//! Requests of ours awaiting responses from other servers, by request id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use iocluster_socketio::adapter::{AdapterError, BroadcastFlags};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::uid::uid;

/// A response: its JSON (binary values as placeholders) and attachments.
pub(crate) type Response = (Value, Vec<Bytes>);

/// Responses kept per request before more are dropped.
const RESPONSES_PER_REQUEST: usize = 4096;

type Table = Arc<Mutex<HashMap<String, mpsc::Sender<Response>>>>;

/// The table of requests in flight.
pub(crate) struct Pending {
    table: Table,
    /// Makes request ids: `uid2(6)` for the classic adapter, 16 hex
    /// characters for the sharded one, as Node's.
    new_id: fn() -> String,
}

impl Default for Pending {
    fn default() -> Self {
        Pending::with_ids(|| uid(6))
    }
}

impl Pending {
    /// A table whose request ids `new_id` makes.
    pub(crate) fn with_ids(new_id: fn() -> String) -> Self {
        Pending {
            table: Table::default(),
            new_id,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::Sender<Response>>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new request: its id and where its responses arrive. Dropping the
    /// returned [`Request`] forgets it.
    pub(crate) fn register(&self) -> Request {
        let (sender, responses) = mpsc::channel(RESPONSES_PER_REQUEST);
        let mut table = self.lock();
        let mut id = (self.new_id)();
        while table.contains_key(&id) {
            id = (self.new_id)();
        }
        table.insert(id.clone(), sender);
        Request {
            id,
            responses,
            table: Arc::clone(&self.table),
        }
    }

    /// Whether `id` is one of ours (a request of ours coming back).
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.lock().contains_key(id)
    }

    /// Delivers a response to the request it answers, if it is ours.
    pub(crate) fn deliver(&self, id: &str, response: Response) {
        if let Some(sender) = self.lock().get(id) {
            let _ = sender.try_send(response);
        }
    }
}

/// A request of ours in flight.
pub(crate) struct Request {
    pub(crate) id: String,
    pub(crate) responses: mpsc::Receiver<Response>,
    table: Table,
}

/// How long a request waits for other servers: the operator's `timeout`
/// flag, else the adapter's `requests_timeout`.
pub(crate) fn request_timeout(flags: &BroadcastFlags, default: Duration) -> Duration {
    flags.timeout.map(Duration::from_millis).unwrap_or(default)
}

impl Request {
    /// Waits for `expected` responses until `timeout`, handing each to
    /// `take`; fails with [`AdapterError::Timeout`] when they do not all
    /// come in time.
    pub(crate) async fn collect(
        &mut self,
        expected: usize,
        timeout: Duration,
        mut take: impl FnMut(Response),
    ) -> Result<(), AdapterError> {
        let deadline = tokio::time::Instant::now() + timeout;
        for received in 0..expected {
            match tokio::time::timeout_at(deadline, self.responses.recv()).await {
                Ok(Some(response)) => take(response),
                Ok(None) | Err(_) => return Err(AdapterError::Timeout { received, expected }),
            }
        }
        Ok(())
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        self.table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}
