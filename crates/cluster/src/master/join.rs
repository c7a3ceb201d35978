//! Streams between two workers: a worker that received a request for
//! another worker's session on a kept-alive connection asks the master for
//! a Unix stream to the owner, over which it proxies the request.

use std::sync::Arc;

use super::Master;
use crate::control::{Frame, MasterMessage};
use crate::handoff::HandoffKind;
use crate::sid::InstanceId;

impl Master {
    /// Joins `requester` to `owner` with a Unix socketpair: one end to the
    /// owner to serve (with the client's address), the other to the
    /// requester (with its request number); or tells the requester there
    /// is no such worker.
    pub(super) fn join(
        &self,
        requester: InstanceId,
        request: u64,
        owner: InstanceId,
        remote: Option<String>,
    ) {
        let (owner_handoff, requester_handoff) = {
            let table = self.table();
            (
                table
                    .workers
                    .get(&owner)
                    .filter(|w| w.ready)
                    .map(|w| Arc::clone(&w.handoff)),
                table
                    .workers
                    .get(&requester)
                    .map(|w| Arc::clone(&w.handoff)),
            )
        };
        let Some(requester_handoff) = requester_handoff else {
            return;
        };
        let (Some(owner_handoff), Ok((served, client))) =
            (owner_handoff, std::os::unix::net::UnixStream::pair())
        else {
            if let Some(worker) = self.table().workers.get(&requester) {
                worker
                    .control
                    .send(Frame::control(&MasterMessage::ConnectFailed { request }));
            }
            return;
        };
        let remote = remote.unwrap_or_default();
        let stopping = self.stopping.clone();
        tokio::spawn(async move {
            let delivered = owner_handoff
                .send(&served, HandoffKind::ProxyServer, remote.as_bytes())
                .await
                .is_ok()
                && requester_handoff
                    .send(&client, HandoffKind::ProxyClient, &request.to_be_bytes())
                    .await
                    .is_ok();
            if !delivered && !stopping.is_cancelled() {
                tracing::debug!(request, "proxy stream not delivered");
            }
        });
    }
}
