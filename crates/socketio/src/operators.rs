//! Broadcast operators: `to`, `except`, `local`, `volatile`, `timeout`, and
//! the server-wide operations on the sockets they target.

use std::time::Duration;

use crate::adapter::{AckReplies, AdapterError, BroadcastOptions, SocketInfo};
use crate::namespace::Namespace;
use crate::payload::Payload;
use crate::remote::RemoteSocket;
use crate::socket::event_packet;

/// Selects sockets of a namespace on every server, then acts on them.
///
/// ```no_run
/// # fn demo(io: iocluster_socketio::Server) {
/// io.of("/").to("room1").to("room2").except("banned").emit("news", "hello");
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct BroadcastOperator {
    namespace: Namespace,
    opts: BroadcastOptions,
    timeout: Option<Duration>,
}

impl BroadcastOperator {
    pub(crate) fn new(namespace: Namespace) -> Self {
        BroadcastOperator {
            namespace,
            opts: BroadcastOptions::default(),
            timeout: None,
        }
    }

    /// Targets the sockets in `room` too.
    pub fn to(mut self, room: impl Into<String>) -> Self {
        let room = room.into();
        if !self.opts.rooms.contains(&room) {
            self.opts.rooms.push(room);
        }
        self
    }

    /// Same as [`BroadcastOperator::to`].
    pub fn within(self, room: impl Into<String>) -> Self {
        self.to(room)
    }

    /// Excludes the sockets in `room`.
    pub fn except(mut self, room: impl Into<String>) -> Self {
        let room = room.into();
        if !self.opts.except.contains(&room) {
            self.opts.except.push(room);
        }
        self
    }

    pub(crate) fn except_socket(self, id: String) -> Self {
        self.except(id)
    }

    /// This server's sockets only.
    pub fn local(mut self) -> Self {
        self.opts.flags.local = true;
        self
    }

    /// The event may be lost for clients not ready to receive it.
    pub fn volatile(mut self) -> Self {
        self.opts.flags.volatile = true;
        self
    }

    /// Sets how long [`emit_with_ack`](Self::emit_with_ack) and requests to
    /// other servers wait.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The options this operator carries.
    pub fn options(&self) -> &BroadcastOptions {
        &self.opts
    }

    /// Emits an event to the targeted sockets.
    pub fn emit(self, event: &str, payload: impl Into<Payload>) {
        let packet = event_packet(self.namespace.name(), event, payload.into(), None);
        crate::stats::BROADCASTS.add(1);
        self.namespace.adapter().broadcast(packet, self.opts);
    }

    /// Emits an event asking every targeted client for an ack and collects
    /// the replies within the timeout (5 s unless [`timeout`](Self::timeout)
    /// set one).
    pub async fn emit_with_ack(mut self, event: &str, payload: impl Into<Payload>) -> AckReplies {
        let timeout = self.timeout.unwrap_or(Duration::from_secs(5));
        self.opts.flags.timeout = Some(timeout.as_millis() as u64);
        let packet = event_packet(self.namespace.name(), event, payload.into(), None);
        crate::stats::BROADCASTS.add(1);
        let replies = crate::stats::timed(
            self.namespace
                .adapter()
                .broadcast_with_ack(packet, self.opts, timeout),
        )
        .await;
        if !replies.complete {
            crate::stats::ACK_TIMEOUTS.add(1);
        }
        replies
    }

    /// The targeted sockets of every server.
    pub async fn fetch_sockets(mut self) -> Result<Vec<RemoteSocket>, AdapterError> {
        if let Some(timeout) = self.timeout {
            self.opts.flags.timeout = Some(timeout.as_millis() as u64);
        }
        let namespace = self.namespace.clone();
        let sockets: Vec<SocketInfo> =
            crate::stats::timed(self.namespace.adapter().fetch_sockets(self.opts)).await?;
        Ok(sockets
            .into_iter()
            .map(|info| RemoteSocket::new(namespace.clone(), info))
            .collect())
    }

    /// Makes the targeted sockets join `rooms`.
    pub fn sockets_join<I, S>(self, rooms: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let rooms = rooms.into_iter().map(Into::into).collect();
        self.namespace.adapter().add_sockets(self.opts, rooms);
    }

    /// Makes the targeted sockets leave `rooms`.
    pub fn sockets_leave<I, S>(self, rooms: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let rooms = rooms.into_iter().map(Into::into).collect();
        self.namespace.adapter().del_sockets(self.opts, rooms);
    }

    /// Disconnects the targeted sockets (`close`: their whole connection).
    pub fn disconnect_sockets(self, close: bool) {
        self.namespace
            .adapter()
            .disconnect_sockets(self.opts, close);
    }
}
