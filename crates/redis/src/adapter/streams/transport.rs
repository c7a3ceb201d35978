//! How the streams adapter's messages travel and what it keeps besides:
//! every message an entry of the one stream (responses too: Node's
//! `doPublishResponse` appends like `doPublish`), servers known by their
//! writes (`ClusterAdapterWithHeartbeat`), sessions kept in Redis for
//! recovery.

use std::fmt::Display;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use fred::clients::Client;
use iocluster_socketio::RecoveryConfig;
use iocluster_socketio::adapter::{
    BoxFuture, BroadcastOptions, PersistedSession, RecoveryStore, RestoredSession,
};
use iocluster_socketio::parser::Packet;

use super::config::RedisStreamsAdapterConfig;
use super::entry;
use super::id::StreamId;
use super::nodes::Nodes;
use super::reader::{Namespaces, ReaderHandle};
use super::session::{self, Connected};
use super::writer::{Command, Writer};
use crate::adapter::cluster::wire::{Incoming, Item, MessageType, wire_opts};
use crate::adapter::cluster::{ClusterCore, Others, Responder, Transport};

/// A namespace's streams adapter.
pub(crate) type StreamsCore = ClusterCore<Streams>;

/// The streams adapter's own part of a namespace's core.
pub(crate) struct Streams {
    pub(super) writer: Writer,
    /// For reads of ours besides the stream's (`XRANGE`, sessions).
    pub(super) client: Client,
    pub(super) reader: Arc<ReaderHandle>,
    pub(super) config: RedisStreamsAdapterConfig,
    pub(super) nodes: Nodes,
    /// The server's recovery options, when recovery is on.
    pub(super) recovery: Option<RecoveryConfig>,
    pub(super) connected: Connected,
    /// When this adapter last wrote to the stream (ms on `epoch`).
    pub(super) last_write: AtomicU64,
    pub(super) epoch: tokio::time::Instant,
}

/// How often the sessions of connected sockets are written again, and how
/// long they live: half the recovery window, and the window plus that.
pub(super) fn refresh_period(max: Duration) -> Duration {
    (max / 2).max(Duration::from_secs(1))
}

impl StreamsCore {
    /// Whether recovery records this broadcast: an event without ack, not
    /// volatile (Node's `addOffsetIfNecessary`), with recovery on.
    pub(super) fn records(&self, has_ack: bool, volatile: bool) -> bool {
        self.transport.recovery.is_some() && !has_ack && !volatile
    }

    /// The session of a socket, kept for `ttl`.
    fn write_session(&self, session: &PersistedSession, ttl: Duration) {
        let streams = &self.transport;
        let key = session::key(&streams.config.session_key_prefix, &session.pid);
        let value = session::encode(session);
        streams.writer.send(Command::Set { key, value, ttl });
    }

    /// An entry of the stream for this namespace.
    pub(crate) fn on_entry(&self, message: Incoming, id: StreamId) {
        let offset = self
            .transport
            .recovery
            .is_some()
            .then_some(&id as &dyn Display);
        if message.uid == self.uid {
            // Our own broadcasts that recovery records reach our clients
            // here, with their offset, in the stream's order.
            if message.kind == MessageType::Broadcast
                && message.str("requestId").is_none()
                && self.records(false, wire_opts(&message.data).flags.volatile)
            {
                self.on_message(message, offset);
            }
            return;
        }
        let nodes = &self.transport.nodes;
        nodes.seen(&message.uid);
        match message.kind {
            MessageType::InitialHeartbeat => self.send(MessageType::Heartbeat, None, &[]),
            MessageType::AdapterClose => nodes.remove(&message.uid),
            _ => self.on_message(message, offset),
        }
    }
}

impl Transport for Streams {
    type Handle = Arc<Namespaces>;

    fn send(
        core: &StreamsCore,
        kind: MessageType,
        data: Option<Item<'_>>,
        attachments: &[Bytes],
        _broadcast: Option<(&BroadcastOptions, bool)>,
    ) {
        let streams = &core.transport;
        let fields = entry::fields(kind, data, &core.uid, &core.nsp, attachments);
        streams.writer.send(Command::Append(fields));
        let now = streams.epoch.elapsed().as_millis() as u64;
        streams.last_write.store(now, Ordering::Relaxed);
    }

    fn responder(core: &StreamsCore, _requester: &str) -> Responder {
        let writer = core.transport.writer.clone();
        let (uid, nsp) = (core.uid.clone(), core.nsp.clone());
        Arc::new(move |kind, data, attachments| {
            let fields = entry::fields(kind, Some(data), &uid, &nsp, attachments);
            writer.send(Command::Append(fields));
        })
    }

    fn others(core: &Arc<StreamsCore>) -> BoxFuture<'static, Others> {
        let alive = core.transport.nodes.alive().into_iter().collect();
        Box::pin(async move { Others::Uids(alive) })
    }

    fn delivers_on_return(core: &StreamsCore, packet: &Packet, opts: &BroadcastOptions) -> bool {
        core.transport.recovery.is_some() && RecoveryStore::is_recorded(packet, opts)
    }

    fn track_session(core: &StreamsCore, session: &PersistedSession) {
        let streams = &core.transport;
        let Some(recovery) = &streams.recovery else {
            return;
        };
        if !streams.config.persist_connected_sessions {
            return;
        }
        streams.connected.track(session);
        let max = recovery.max_disconnection_duration;
        core.write_session(session, max + refresh_period(max));
    }

    fn persist_session(core: &StreamsCore, session: PersistedSession) {
        let streams = &core.transport;
        let Some(recovery) = &streams.recovery else {
            return;
        };
        streams.connected.untrack(&session.pid);
        // Node's `SET key value PX maxDisconnectionDuration`.
        core.write_session(&session, recovery.max_disconnection_duration);
    }

    fn forget_session(core: &StreamsCore, pid: &str) {
        let streams = &core.transport;
        if streams.connected.untrack(pid) {
            let key = session::key(&streams.config.session_key_prefix, pid);
            streams.writer.send(Command::Del(key));
        }
    }

    fn restore_session(
        core: &Arc<StreamsCore>,
        pid: String,
        offset: String,
    ) -> BoxFuture<'static, Option<RestoredSession>> {
        if core.transport.recovery.is_none() {
            return Box::pin(async { None });
        }
        Box::pin(Arc::clone(core).restore(pid, offset))
    }

    fn close(core: &Arc<StreamsCore>, namespaces: &Arc<Namespaces>) {
        core.send(MessageType::AdapterClose, None, &[]);
        namespaces.remove(core);
    }
}

/// Writes a heartbeat whenever the adapter wrote nothing for
/// `heartbeat_interval` (Node's `scheduleHeartbeat`), until it is closed
/// or gone.
pub(super) async fn heartbeats(core: std::sync::Weak<StreamsCore>, interval: Duration) {
    let interval = interval.max(Duration::from_millis(10));
    let mut next = tokio::time::Instant::now() + interval;
    loop {
        tokio::time::sleep_until(next).await;
        let Some(core) = core.upgrade() else { return };
        if core.is_closed() {
            return;
        }
        let streams = &core.transport;
        let last =
            streams.epoch + Duration::from_millis(streams.last_write.load(Ordering::Relaxed));
        if tokio::time::Instant::now() >= last + interval {
            core.send(MessageType::Heartbeat, None, &[]);
            next = tokio::time::Instant::now() + interval;
        } else {
            next = last + interval;
        }
    }
}

/// Writes the sessions of the connected sockets again every
/// [`refresh_period`], until the adapter is closed or gone.
pub(super) async fn refresh_sessions(core: std::sync::Weak<StreamsCore>, max: Duration) {
    let period = refresh_period(max);
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let Some(core) = core.upgrade() else { return };
        if core.is_closed() {
            return;
        }
        for session in core.transport.connected.all() {
            core.write_session(&session, max + period);
        }
    }
}
