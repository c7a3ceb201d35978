//! socket.io-adapter's `ClusterAdapter` (2.5), once for both adapters built
//! on it: the sharded one (Redis 7 sharded pub/sub, `sharded/`) and the
//! streams one (one Redis stream, `streams/`). Node has the same split: a
//! `ClusterAdapter` base class and, per adapter, how a message travels
//! (`doPublish`, `doPublishResponse`) and how servers are counted.
//!
//! - `wire.rs`: the messages, `{uid, nsp, type, data}`.
//! - `outgoing.rs`: the [`Adapter`](iocluster_socketio::adapter::Adapter)
//!   of a namespace, which sends requests and collects their responses.
//! - `incoming.rs`: what a namespace does with other servers' messages.
//!
//! What differs between the two lives behind [`Transport`].

mod incoming;
mod outgoing;
pub(crate) mod wire;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use iocluster_socketio::adapter::{
    BoxFuture, BroadcastOptions, LocalNamespace, PersistedSession, RestoredSession,
};
use iocluster_socketio::parser::Packet;

pub(crate) use self::outgoing::ClusterAdapter;
use self::wire::{Item, MessageType};
use super::pending::Pending;
use crate::uid::hex_id;

/// Sends one response of ours to the server that asked, from any task.
pub(crate) type Responder = Arc<dyn Fn(MessageType, Item<'_>, &[Bytes]) + Send + Sync>;

/// The other servers a request waits for.
pub(crate) enum Others {
    /// This many answer (the sharded adapter counts subscribers).
    Count(usize),
    /// These, by uid (the streams adapter knows who wrote lately: Node's
    /// `missingUids`).
    Uids(HashSet<String>),
}

impl Others {
    /// How many servers answer.
    pub(crate) fn len(&self) -> usize {
        match self {
            Others::Count(n) => *n,
            Others::Uids(uids) => uids.len(),
        }
    }
}

/// How an adapter's messages travel, and what it keeps besides: the part
/// of the sharded and the streams adapters that is their own. Every method
/// gets the namespace's whole core.
pub(crate) trait Transport: Sized + Send + Sync + 'static {
    /// What the namespace's adapter holds besides its core (the process's
    /// link, the room subscriptions…), for [`Transport::close`].
    type Handle: Send + Sync + 'static;

    /// Sends a message of ours to every other server. `broadcast`: the
    /// options of the broadcast the message carries and whether it waits
    /// for acks (the sharded adapter's dynamic modes publish a broadcast to
    /// one room on that room's channel).
    fn send(
        core: &ClusterCore<Self>,
        kind: MessageType,
        data: Option<Item<'_>>,
        attachments: &[Bytes],
        broadcast: Option<(&BroadcastOptions, bool)>,
    );

    /// What sends responses to server `requester`.
    fn responder(core: &ClusterCore<Self>, requester: &str) -> Responder;

    /// The servers other than this one that answer requests.
    fn others(core: &Arc<ClusterCore<Self>>) -> BoxFuture<'static, Others>;

    /// Whether a broadcast of ours reaches this server's clients only when
    /// it comes back to us (the streams adapter with recovery: with its
    /// offset, in the stream's order); else they get it at once.
    fn delivers_on_return(
        _core: &ClusterCore<Self>,
        _packet: &Packet,
        _opts: &BroadcastOptions,
    ) -> bool {
        false
    }

    /// See [`Adapter::track_session`](iocluster_socketio::adapter::Adapter::track_session).
    fn track_session(_core: &ClusterCore<Self>, _session: &PersistedSession) {}

    /// See [`Adapter::persist_session`](iocluster_socketio::adapter::Adapter::persist_session).
    fn persist_session(_core: &ClusterCore<Self>, _session: PersistedSession) {}

    /// See [`Adapter::forget_session`](iocluster_socketio::adapter::Adapter::forget_session).
    fn forget_session(_core: &ClusterCore<Self>, _pid: &str) {}

    /// See [`Adapter::restore_session`](iocluster_socketio::adapter::Adapter::restore_session).
    fn restore_session(
        _core: &Arc<ClusterCore<Self>>,
        _pid: String,
        _offset: String,
    ) -> BoxFuture<'static, Option<RestoredSession>> {
        Box::pin(async { None })
    }

    /// The namespace's adapter closes (its core is already marked closed).
    fn close(core: &Arc<ClusterCore<Self>>, handle: &Self::Handle);
}

/// One namespace's adapter state: its uid, requests in flight, the local
/// namespace it acts on, and the transport's own part.
pub(crate) struct ClusterCore<T> {
    pub(crate) nsp: String,
    /// This server's uid on the wire (16 hex characters, as Node's).
    pub(crate) uid: String,
    pub(crate) local: LocalNamespace,
    pub(crate) pending: Pending,
    /// How long a request waits for other servers unless told otherwise.
    pub(crate) requests_timeout: Duration,
    /// Messages that could not be read (shared by a factory's adapters).
    pub(crate) malformed: Arc<AtomicU64>,
    /// Set by `close`: the adapter sends and subscribes no more.
    pub(crate) closed: AtomicBool,
    pub(crate) transport: T,
}

impl<T> ClusterCore<T> {
    /// A namespace's core with a new uid.
    pub(crate) fn new(
        local: LocalNamespace,
        requests_timeout: Duration,
        malformed: Arc<AtomicU64>,
        transport: T,
    ) -> Self {
        ClusterCore {
            nsp: local.name(),
            uid: hex_id(),
            local,
            pending: Pending::with_ids(hex_id),
            requests_timeout,
            malformed,
            closed: AtomicBool::new(false),
            transport,
        }
    }

    /// Whether the adapter was closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Counts (and logs at debug) a message that could not be read.
    pub(crate) fn count_malformed(&self, why: &str) {
        self.malformed.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(nsp = self.nsp, why, "skipping a malformed message");
    }
}

impl<T: Transport> ClusterCore<T> {
    /// Sends a message of ours to every other server.
    pub(crate) fn send(&self, kind: MessageType, data: Option<Item<'_>>, attachments: &[Bytes]) {
        T::send(self, kind, data, attachments, None);
    }
}
