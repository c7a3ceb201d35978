//! Adapters: how a namespace reaches sockets on other servers.
//!
//! Every operation that may span processes goes through [`Adapter`]. The
//! namespace keeps its own sockets and rooms; an adapter is given a
//! [`LocalNamespace`] to act on them when a request comes from elsewhere.
//! [`InMemoryAdapter`] (the default) serves one process; the cluster adapter
//! (through the iocluster master) and the Redis adapter (wire-compatible
//! with Node's) implement the same trait in their own crates.

mod memory;
mod recovery;

pub use memory::{InMemoryAdapter, InMemoryAdapterFactory};
pub use recovery::{PersistedSession, RecoveryStore, RestoreGate, RestoreHold, RestoredSession};

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::parser::Packet;
use crate::payload::Payload;
use crate::socket::SocketHandshake;

pub use crate::namespace::LocalNamespace;

/// A boxed future, as adapter methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Flags of a broadcast.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastFlags {
    /// Only this server's sockets.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub local: bool,
    /// May be dropped for clients that are not ready to receive.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub volatile: bool,
    /// For broadcasts with acks: how long to wait for replies, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
}

/// Which sockets a broadcast or a server-wide operation targets: those in
/// any of `rooms` (all when empty), minus those in any of `except`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastOptions {
    /// Target rooms; empty means every socket of the namespace.
    pub rooms: Vec<String>,
    /// Rooms whose sockets are excluded.
    pub except: Vec<String>,
    /// Flags.
    #[serde(default)]
    pub flags: BroadcastFlags,
}

impl BroadcastOptions {
    /// Whether a socket in `socket_rooms` is targeted.
    pub fn includes(&self, socket_rooms: &[String]) -> bool {
        let included = self.rooms.is_empty() || socket_rooms.iter().any(|r| self.rooms.contains(r));
        included && !socket_rooms.iter().any(|r| self.except.contains(r))
    }
}

/// A socket as seen from any server: what `fetch_sockets` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SocketInfo {
    /// The socket id.
    pub id: String,
    /// The handshake of the socket.
    pub handshake: SocketHandshake,
    /// The rooms the socket is in (its own id included).
    pub rooms: Vec<String>,
    /// The socket's data (`socket.data`).
    pub data: Value,
}

/// Why a cross-server operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdapterError {
    /// Not every server answered in time.
    #[error("timeout reached: only {received} of {expected} servers answered")]
    Timeout {
        /// Answers received.
        received: usize,
        /// Answers expected.
        expected: usize,
    },
    /// The link to the other servers is down.
    #[error("adapter unavailable: {0}")]
    Unavailable(String),
}

/// The replies of a broadcast with acks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AckReplies {
    /// The replies that arrived, in arrival order.
    pub replies: Vec<Payload>,
    /// How many clients were targeted (when every server reported it).
    pub expected: usize,
    /// Whether every targeted client replied in time.
    pub complete: bool,
}

/// The cross-server side of a namespace.
///
/// Implementations deliver to this server's sockets through the
/// [`LocalNamespace`] they were created with, and to other servers by their
/// own means. `broadcast` receives the packet before encoding so that an
/// adapter can both encode it once for local clients and forward it in its
/// own wire format.
pub trait Adapter: Send + Sync + 'static {
    /// Sends an event packet to the targeted sockets on every server
    /// (`flags.local`: this server only).
    fn broadcast(&self, packet: Packet, opts: BroadcastOptions);

    /// Sends an event packet that asks for acks, and collects the replies of
    /// every targeted client on every server within `timeout`.
    fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
        timeout: Duration,
    ) -> BoxFuture<'static, AckReplies>;

    /// The targeted sockets of every server.
    fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> BoxFuture<'static, Result<Vec<SocketInfo>, AdapterError>>;

    /// Makes the targeted sockets of every server join `rooms`.
    fn add_sockets(&self, opts: BroadcastOptions, rooms: Vec<String>);

    /// Makes the targeted sockets of every server leave `rooms`.
    fn del_sockets(&self, opts: BroadcastOptions, rooms: Vec<String>);

    /// Disconnects the targeted sockets of every server (`close`: their whole
    /// connection).
    fn disconnect_sockets(&self, opts: BroadcastOptions, close: bool);

    /// Emits an event to the other servers' namespace (not this one's);
    /// with `ack`, waits up to that long for each server's reply.
    fn server_side_emit(
        &self,
        event: Payload,
        ack: Option<Duration>,
    ) -> BoxFuture<'static, Result<Vec<Payload>, AdapterError>>;

    /// How many servers share this namespace (this one included).
    fn server_count(&self) -> BoxFuture<'static, usize>;

    /// Keeps a disconnected socket's state for connection state recovery.
    /// By default nothing is kept: an adapter without recovery (the Redis
    /// adapters, as Node's) restores nothing.
    fn persist_session(&self, session: PersistedSession) {
        let _ = session;
    }

    /// A connected socket's recoverable state changed (it connected, joined
    /// or left a room, or its data changed). Called only with recovery on.
    /// Adapters whose state must outlive this process (the cluster adapter)
    /// keep it elsewhere; by default nothing happens and
    /// [`Adapter::persist_session`] at disconnect is enough.
    fn track_session(&self, session: &PersistedSession) {
        let _ = session;
    }

    /// A socket left for a reason that cannot be recovered: forget it.
    fn forget_session(&self, pid: &str) {
        let _ = pid;
    }

    /// Finds a persisted session and the packets it missed after `offset`;
    /// by default none.
    fn restore_session(
        &self,
        pid: String,
        offset: String,
    ) -> BoxFuture<'static, Option<RestoredSession>> {
        let _ = (pid, offset);
        Box::pin(async { None })
    }

    /// Called when the namespace is closed (server shutdown).
    fn close(&self) {}
}

/// Makes one adapter per namespace.
pub trait AdapterFactory: Send + Sync + 'static {
    /// The adapter of a new namespace.
    fn create(&self, namespace: LocalNamespace) -> Arc<dyn Adapter>;
}

/// A shared factory (one chosen at run time, such as the one a cluster
/// worker is given) makes adapters as the factory it points to.
impl<F: AdapterFactory + ?Sized> AdapterFactory for Arc<F> {
    fn create(&self, namespace: LocalNamespace) -> Arc<dyn Adapter> {
        (**self).create(namespace)
    }
}
