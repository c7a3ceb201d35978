//! Acknowledgements: the client's replies to our events, and our replies to
//! the client's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::adapter::AckReplies;
use crate::parser::{Packet, PacketType};
use crate::payload::Payload;
use crate::socket::Socket;

/// Why an ack did not come.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// No reply within the timeout.
    #[error("operation has timed out")]
    Timeout,
    /// The socket disconnected before replying.
    #[error("socket has been disconnected")]
    Disconnected,
    /// The message could not be sent.
    #[error("could not send: {0}")]
    Send(#[from] iocluster_engineio::SendError),
}

/// Where a reply goes.
#[derive(Debug)]
pub(crate) enum AckWaiter {
    /// One reply to one `emit_with_ack`.
    One(oneshot::Sender<Payload>),
    /// One of many replies to a broadcast.
    Many(mpsc::UnboundedSender<Payload>),
}

/// The acks a socket waits for, by id.
#[derive(Debug, Default)]
pub(crate) struct PendingAcks {
    waiters: Mutex<HashMap<u64, AckWaiter>>,
}

impl PendingAcks {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, AckWaiter>> {
        self.waiters.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn insert(&self, id: u64, waiter: AckWaiter) {
        self.lock().insert(id, waiter);
    }

    pub(crate) fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Delivers a reply; false when no ack with this id is awaited.
    pub(crate) fn resolve(&self, id: u64, payload: Payload) -> bool {
        match self.lock().remove(&id) {
            Some(AckWaiter::One(sender)) => sender.send(payload).is_ok(),
            Some(AckWaiter::Many(sender)) => sender.send(payload).is_ok(),
            None => false,
        }
    }

    /// Drops every waiter (the socket is gone).
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }
}

/// Sends the reply to an event the client emitted with an ack callback.
/// Dropping it sends nothing, as a Node handler that never calls back.
#[derive(Debug)]
pub struct AckSender {
    socket: Arc<Socket>,
    id: u64,
}

impl AckSender {
    pub(crate) fn new(socket: Arc<Socket>, id: u64) -> Self {
        AckSender { socket, id }
    }

    /// Replies with `payload`.
    pub fn send(self, payload: impl Into<Payload>) -> Result<(), iocluster_engineio::SendError> {
        let payload = payload.into();
        let packet = Packet {
            kind: PacketType::Ack,
            nsp: self.socket.namespace().name().to_owned(),
            id: Some(self.id),
            data: Some(serde_json::Value::Array(payload.args)),
            attachments: payload.attachments,
        };
        self.socket.send_packet(&packet)
    }
}

/// The replies of this server's clients to one broadcast with acks.
#[derive(Debug)]
pub struct LocalAcks {
    /// How many clients of this server were sent the packet.
    pub expected: usize,
    receiver: mpsc::UnboundedReceiver<Payload>,
    pending: Vec<(Weak<Socket>, u64)>,
}

impl LocalAcks {
    pub(crate) fn new(
        expected: usize,
        receiver: mpsc::UnboundedReceiver<Payload>,
        pending: Vec<(Weak<Socket>, u64)>,
    ) -> Self {
        LocalAcks {
            expected,
            receiver,
            pending,
        }
    }

    /// The next reply; none once every client replied or left.
    pub async fn next(&mut self) -> Option<Payload> {
        self.receiver.recv().await
    }

    /// Waits for every reply, or the timeout.
    pub async fn collect(mut self, timeout: Duration) -> AckReplies {
        let mut replies = Vec::with_capacity(self.expected);
        let deadline = tokio::time::Instant::now() + timeout;
        while replies.len() < self.expected {
            match tokio::time::timeout_at(deadline, self.receiver.recv()).await {
                Ok(Some(reply)) => replies.push(reply),
                Ok(None) | Err(_) => break,
            }
        }
        AckReplies {
            complete: replies.len() == self.expected,
            expected: self.expected,
            replies,
        }
    }
}

impl Drop for LocalAcks {
    fn drop(&mut self) {
        for (socket, id) in self.pending.drain(..) {
            if let Some(socket) = socket.upgrade() {
                socket.acks().remove(id);
            }
        }
    }
}
