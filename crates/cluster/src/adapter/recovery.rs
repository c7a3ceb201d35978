//! Connection state recovery with the cluster adapter: sockets' states go
//! to the master as they change, and a reconnecting client's state and the
//! broadcasts it missed come back from it, so recovery works on any worker,
//! even after the one that served the client died.

use std::time::{Duration, Instant};

use iocluster_socketio::adapter::{BoxFuture, PersistedSession, RestoreHold, RestoredSession};
use serde_json::Value;

use super::capture::{CaptureGate, CaptureGuard};
use super::relay::{self, Event};
use super::{ClusterAdapter, REQUEST_TIMEOUT};
use crate::control::WorkerMessage;

impl ClusterAdapter {
    /// Sends a socket's recoverable state to the master in `message`.
    pub(super) fn send_session(
        &self,
        session: &PersistedSession,
        message: impl FnOnce(String, Value) -> WorkerMessage,
    ) {
        if let Ok(record) = serde_json::to_value(session) {
            self.relay.control(&message(self.nsp.clone(), record));
        }
    }

    /// Asks the master for a disconnected session and the broadcasts it
    /// missed; none when the master has neither, or the session was away
    /// longer than the namespace's `max_disconnection_duration`.
    pub(super) fn restore(
        &self,
        pid: String,
        offset: String,
    ) -> BoxFuture<'static, Option<RestoredSession>> {
        let Some(recovery) = self.local.recovery() else {
            return Box::pin(async { None });
        };
        let capture = CaptureGuard::start(self.relay.captures(), &self.nsp);
        let mut pending = self.relay.register();
        self.relay.control(&WorkerMessage::Restore {
            request: pending.request,
            nsp: self.nsp.clone(),
            pid,
            offset,
        });
        Box::pin(async move {
            let started = Instant::now();
            let answer = tokio::time::timeout(REQUEST_TIMEOUT, async {
                loop {
                    match pending.events.recv().await? {
                        Event::Restored { record, packets } => return Some((record, packets)),
                        _ => continue,
                    }
                }
            })
            .await
            .ok()
            .flatten()?;
            let (record, packets) = answer;
            let record: serde_json::Value = serde_json::from_slice(&record?).ok()?;
            let disconnected_ms = record.get("disconnected_ms").and_then(Value::as_u64)?;
            if Duration::from_millis(disconnected_ms) + started.elapsed()
                > recovery.max_disconnection_duration
            {
                return None;
            }
            let session: PersistedSession =
                serde_json::from_value(record.get("session")?.clone()).ok()?;
            let missed = packets
                .into_iter()
                .filter_map(relay::missed_payload)
                .collect();
            // The capture goes on until the socket is admitted.
            let gate = CaptureGate::new(capture, session.rooms.clone());
            Some(RestoredSession {
                session,
                missed,
                hold: RestoreHold::gated(gate),
            })
        })
    }
}
