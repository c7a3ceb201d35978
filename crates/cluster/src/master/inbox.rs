//! What a worker's frames ask of the master: readiness and session counts
//! (the table), relay frames to forward, recovery state to keep or give
//! back, a stream to another worker.

use super::Master;
use std::sync::Arc;

use crate::control::{self, Frame, MasterMessage, WorkerMessage};
use crate::sid::{InstanceId, NodeId};

impl Master {
    /// Handles one frame from worker `source`.
    pub(super) fn on_frame(&self, source: InstanceId, frame: Frame) {
        match frame {
            Frame::Control(json) => {
                if let Some(message) = control::parse::<WorkerMessage>(&json) {
                    self.on_message(source, message);
                }
            }
            Frame::Relay {
                peer,
                flags,
                payload,
            } => self.forward_relay(source, peer, flags, payload),
            // Only the master sends recovery answers.
            Frame::Restored { .. } => {}
        }
    }

    fn on_message(&self, source: InstanceId, message: WorkerMessage) {
        match message {
            WorkerMessage::Ready => self.worker_ready(source),
            WorkerMessage::SessionOpened { .. } => self.session_opened(source),
            WorkerMessage::SessionClosed { .. } => self.session_closed(source),
            WorkerMessage::TrackSession { nsp, record } => {
                self.recovery().track(source, nsp, record)
            }
            WorkerMessage::PersistSession { nsp, record } => self.recovery().persist(nsp, record),
            WorkerMessage::ForgetSession { pid } => self.recovery().forget(&pid),
            WorkerMessage::Restore {
                request,
                nsp,
                pid,
                offset,
            } => self.restore(source, request, &nsp, &pid, &offset),
            WorkerMessage::Report { request, report } => self.on_report(source, request, report),
            WorkerMessage::PeerLookup { request, node } => self.peer_lookup(source, request, node),
            WorkerMessage::Connect {
                request,
                instance,
                remote,
            } => self.join(source, request, InstanceId(instance), remote),
        }
    }

    /// Answers a worker's question: where is `node` reachable?
    fn peer_lookup(&self, source: InstanceId, request: u64, node: u32) {
        let peering = Arc::clone(&self.peering);
        let control = self.table().workers.get(&source).map(|w| w.control.clone());
        let Some(control) = control else {
            return;
        };
        tokio::spawn(async move {
            let addr = peering.lookup(NodeId(node)).await.map(|a| a.to_string());
            control.send(Frame::control(&MasterMessage::PeerAddress {
                request,
                addr,
            }));
        });
    }

    fn worker_ready(&self, instance: InstanceId) {
        {
            let mut table = self.table();
            let Some(worker) = table.workers.get_mut(&instance) else {
                return;
            };
            worker.ready = true;
            tracing::info!(%instance, pid = worker.pid, "worker ready");
        }
        self.announce_peers();
        self.changed.notify_waiters();
    }

    fn session_opened(&self, instance: InstanceId) {
        if let Some(worker) = self.table().workers.get_mut(&instance) {
            worker.sessions += 1;
            worker.handed.pop_front();
        }
        self.changed.notify_waiters();
    }

    fn session_closed(&self, instance: InstanceId) {
        if let Some(worker) = self.table().workers.get_mut(&instance) {
            worker.sessions = worker.sessions.saturating_sub(1);
        }
        self.changed.notify_waiters();
    }
}
