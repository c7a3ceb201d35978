//! Sockets returned by `fetch_sockets`, wherever they live.

use crate::adapter::{BroadcastOptions, SocketInfo};
use crate::namespace::Namespace;
use crate::payload::Payload;
use crate::socket::{SocketHandshake, event_packet};

/// A socket on this server or another: its details, and operations that go
/// through the adapter (as Node's `RemoteSocket`).
#[derive(Debug, Clone)]
pub struct RemoteSocket {
    namespace: Namespace,
    info: SocketInfo,
}

impl RemoteSocket {
    pub(crate) fn new(namespace: Namespace, info: SocketInfo) -> Self {
        RemoteSocket { namespace, info }
    }

    /// The socket id.
    pub fn id(&self) -> &str {
        &self.info.id
    }

    /// The handshake.
    pub fn handshake(&self) -> &SocketHandshake {
        &self.info.handshake
    }

    /// The rooms the socket was in when fetched.
    pub fn rooms(&self) -> &[String] {
        &self.info.rooms
    }

    /// The socket's data when fetched.
    pub fn data(&self) -> &serde_json::Value {
        &self.info.data
    }

    fn only_me(&self) -> BroadcastOptions {
        BroadcastOptions {
            rooms: vec![self.info.id.clone()],
            ..Default::default()
        }
    }

    /// Emits an event to this socket.
    pub fn emit(&self, event: &str, payload: impl Into<Payload>) {
        let packet = event_packet(self.namespace.name(), event, payload.into(), None);
        self.namespace.adapter().broadcast(packet, self.only_me());
    }

    /// Makes the socket join rooms.
    pub fn join<I, S>(&self, rooms: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let rooms = rooms.into_iter().map(Into::into).collect();
        self.namespace.adapter().add_sockets(self.only_me(), rooms);
    }

    /// Makes the socket leave rooms.
    pub fn leave<I, S>(&self, rooms: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let rooms = rooms.into_iter().map(Into::into).collect();
        self.namespace.adapter().del_sockets(self.only_me(), rooms);
    }

    /// Disconnects the socket.
    pub fn disconnect(&self, close: bool) {
        self.namespace
            .adapter()
            .disconnect_sockets(self.only_me(), close);
    }
}
