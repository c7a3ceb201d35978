//! The master's part in the cluster adapter: it forwards relay frames
//! between workers without decoding them (keeping those flagged for
//! recovery), announces which workers are alive, and answers recovery
//! requests from the state it keeps.

use bytes::Bytes;

use super::Master;
use crate::control::{FLAG_RECORD, Frame, MasterMessage, TO_ALL, TO_MASTER};
use crate::sid::InstanceId;

impl Master {
    /// Forwards a relay frame from `source` to `peer` (every other ready
    /// worker, one worker, or none), recording it first when flagged.
    pub(super) fn forward_relay(&self, source: InstanceId, peer: u32, flags: u8, payload: Bytes) {
        if flags & FLAG_RECORD != 0 {
            self.recovery().record(payload.clone());
        }
        let forward = Frame::Relay {
            peer: source.0,
            flags: 0,
            payload,
        };
        let table = self.table();
        match peer {
            TO_MASTER => {}
            TO_ALL => {
                for (instance, worker) in &table.workers {
                    if *instance != source && worker.ready {
                        worker.control.send(forward.clone());
                    }
                }
            }
            target => {
                if let Some(worker) = table.workers.get(&InstanceId(target)) {
                    worker.control.send(forward);
                }
            }
        }
    }

    /// Tells every worker which workers are alive.
    pub(super) fn announce_peers(&self) {
        let table = self.table();
        let instances: Vec<u32> = table
            .workers
            .iter()
            .filter(|(_, w)| w.ready)
            .map(|(i, _)| i.0)
            .collect();
        let frame = Frame::control(&MasterMessage::Peers { instances });
        for worker in table.workers.values() {
            worker.control.send(frame.clone());
        }
    }

    /// A worker is gone: its sockets count as disconnected for recovery,
    /// and requests waiting on it stop waiting.
    pub(super) fn worker_gone(&self, instance: InstanceId) {
        self.recovery().worker_gone(instance);
        let gone = Frame::control(&MasterMessage::WorkerGone {
            instance: instance.0,
        });
        for other in self.table().workers.values() {
            other.control.send(gone.clone());
        }
        self.announce_peers();
    }

    /// Answers a worker's recovery request with the session's state and the
    /// broadcasts it missed.
    pub(super) fn restore(
        &self,
        requester: InstanceId,
        request: u64,
        nsp: &str,
        pid: &str,
        offset: &str,
    ) {
        let (record, packets) = self.recovery().restore(nsp, pid, offset);
        if let Some(worker) = self.table().workers.get(&requester) {
            worker.control.send(Frame::Restored {
                request,
                record,
                packets,
            });
        }
    }
}
