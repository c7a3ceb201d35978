//! The Redis streams adapter, wire-compatible with Node's
//! `@socket.io/redis-streams-adapter` 0.2: socket.io-adapter's
//! `ClusterAdapterWithHeartbeat` messages as the entries of one Redis
//! stream, and connection state recovery across servers.
//!
//! Every server appends its messages to the stream (`XADD … MAXLEN ~`,
//! `entry.rs`) through one ordered queue (`writer.rs`) and reads every
//! entry with one `XREAD BLOCK` loop on a connection of its own
//! (`reader.rs`). Servers count each other by their writes, heartbeats
//! included (`nodes.rs`). With recovery on, a broadcast's offset is its
//! entry id; sessions live in Redis under Node's keys (`session.rs`) and
//! are restored with the broadcasts they missed from the stream
//! (`restore.rs`), on any server, Node's included.
//!
//! Differences from Node, each for a reason:
//! - with recovery on, this server's own recorded broadcasts reach its
//!   clients when the reader reads them back (Node delivers them once
//!   `XADD` answers): one order, the stream's, for every server and every
//!   replay;
//! - with `persist_connected_sessions` (the default) sessions of connected
//!   sockets are kept too, so a server killed without a word loses no
//!   session.

mod config;
mod core;
mod entry;
mod factory;
mod id;
mod nodes;
mod reader;
mod restore;
mod session;
mod writer;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use iocluster_socketio::Payload;
use iocluster_socketio::adapter::{
    AckReplies, Adapter, AdapterError, BoxFuture, BroadcastOptions, PersistedSession,
    RecoveryStore, RestoredSession, SocketInfo,
};
use iocluster_socketio::parser::Packet;
use serde_json::Value;

pub use self::config::RedisStreamsAdapterConfig;
use self::core::StreamsCore;
pub use self::factory::RedisStreamsAdapterFactory;
use self::reader::Namespaces;
use self::writer::Command;
use super::acks::{self, AckResponse};
use super::cluster_wire::{self, Item, MessageType, fetched_sockets};
use super::pending::{Request, Response, request_timeout};

/// One namespace's streams adapter. Made by
/// [`RedisStreamsAdapterFactory`].
pub struct RedisStreamsAdapter {
    core: Arc<StreamsCore>,
    namespaces: Arc<Namespaces>,
}

impl std::fmt::Debug for RedisStreamsAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStreamsAdapter")
            .field("nsp", &self.core.nsp)
            .field("uid", &self.core.uid)
            .finish_non_exhaustive()
    }
}

impl RedisStreamsAdapter {
    /// This adapter's uid on the wire.
    pub fn uid(&self) -> &str {
        &self.core.uid
    }

    /// Writes `{opts, <key>: <item>}` (joins, leaves, disconnects).
    fn publish_with_opts(
        &self,
        kind: MessageType,
        opts: &BroadcastOptions,
        key: &'static str,
        item: Item<'_>,
    ) {
        let flags = crate::wire::adapter_flags(&opts.flags);
        let data = Item::Map(vec![
            (
                "opts",
                cluster_wire::opts(&opts.rooms, &opts.except, &flags),
            ),
            (key, item),
        ]);
        self.core.publish(kind, Some(data), &[]);
    }

    /// The session of a socket as its key's expiry: `max` after a
    /// disconnection, plus the refresh period for a connected socket.
    fn write_session(&self, session: &PersistedSession, ttl: Duration) {
        let key = self::session::key(&self.core.config.session_key_prefix, &session.pid);
        let value = self::session::encode(session);
        self.core.writer.send(Command::Set { key, value, ttl });
    }
}

/// How often the sessions of connected sockets are written again, and how
/// long they live: half the recovery window, and the window plus that.
fn refresh_period(max: Duration) -> Duration {
    (max / 2).max(Duration::from_secs(1))
}

/// A `BROADCAST_CLIENT_COUNT` or `BROADCAST_ACK` response.
fn read_ack_response((data, attachments): Response) -> Option<AckResponse> {
    let kind = data.get("type").and_then(Value::as_u64)?;
    if kind == MessageType::BroadcastClientCount as u64 {
        let count = data.get("clientCount").and_then(Value::as_u64).unwrap_or(0);
        Some(AckResponse::ClientCount(count as usize))
    } else if kind == MessageType::BroadcastAck as u64 {
        let args = data.get("packet").cloned().into_iter().collect();
        Some(AckResponse::Ack(Payload { args, attachments }))
    } else {
        None
    }
}

/// Waits for one response from each server of `missing` (Node's
/// `missingUids`), handing each to `take`, until `timeout`.
async fn collect_from(
    request: &mut Request,
    mut missing: HashSet<String>,
    timeout: Duration,
    mut take: impl FnMut(Response),
) -> Result<(), AdapterError> {
    let expected = missing.len();
    let deadline = tokio::time::Instant::now() + timeout;
    while !missing.is_empty() {
        match tokio::time::timeout_at(deadline, request.responses.recv()).await {
            Ok(Some(response)) => {
                let uid = response
                    .0
                    .get("uid")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if missing.remove(uid) {
                    take(response);
                }
            }
            Ok(None) | Err(_) => {
                return Err(AdapterError::Timeout {
                    received: expected - missing.len(),
                    expected,
                });
            }
        }
    }
    Ok(())
}

impl Adapter for RedisStreamsAdapter {
    fn broadcast(&self, packet: Packet, opts: BroadcastOptions) {
        if opts.flags.local {
            self.core.local.broadcast_packet(&packet, &opts);
            return;
        }
        let data = packet.data.clone().unwrap_or(Value::Array(Vec::new()));
        let flags = crate::wire::adapter_flags(&opts.flags);
        let message = Item::Map(vec![
            ("packet", cluster_wire::packet(&data)),
            (
                "opts",
                cluster_wire::opts(&opts.rooms, &opts.except, &flags),
            ),
        ]);
        self.core
            .publish(MessageType::Broadcast, Some(message), &packet.attachments);
        // A recorded broadcast reaches our clients with its offset when the
        // reader reads it back; the others at once.
        if !(self.core.recovery.is_some() && RecoveryStore::is_recorded(&packet, &opts)) {
            self.core.local.broadcast_packet(&packet, &opts);
        }
    }

    fn broadcast_with_ack(
        &self,
        packet: Packet,
        mut opts: BroadcastOptions,
        timeout: Duration,
    ) -> BoxFuture<'static, AckReplies> {
        let core = &self.core;
        if opts.flags.local {
            let acks = core.local.broadcast_with_ack(packet, &opts);
            return Box::pin(acks.collect(timeout));
        }
        let request = core.pending.register();
        opts.flags.timeout = Some(opts.flags.timeout.unwrap_or(timeout.as_millis() as u64));
        let data = packet.data.clone().unwrap_or(Value::Array(Vec::new()));
        let flags = crate::wire::adapter_flags(&opts.flags);
        let message = Item::Map(vec![
            ("packet", cluster_wire::packet(&data)),
            ("requestId", Item::Str(&request.id)),
            (
                "opts",
                cluster_wire::opts(&opts.rooms, &opts.except, &flags),
            ),
        ]);
        core.publish(MessageType::Broadcast, Some(message), &packet.attachments);
        let local = core.local.broadcast_with_ack(packet, &opts);
        let servers = core.nodes.count() + 1;
        Box::pin(acks::collect(
            async move { Some(servers) },
            request,
            local,
            timeout,
            read_ack_response,
        ))
    }

    fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> BoxFuture<'static, Result<Vec<SocketInfo>, AdapterError>> {
        let mut sockets = self.core.local.fetch_sockets(&opts);
        let missing: HashSet<String> = self.core.nodes.alive().into_iter().collect();
        if opts.flags.local || missing.is_empty() {
            return Box::pin(async move { Ok(sockets) });
        }
        let core = Arc::clone(&self.core);
        let timeout = request_timeout(&opts.flags, core.config.requests_timeout);
        let mut request = core.pending.register();
        let flags = crate::wire::adapter_flags(&opts.flags);
        let data = Item::Map(vec![
            (
                "opts",
                cluster_wire::opts(&opts.rooms, &opts.except, &flags),
            ),
            ("requestId", Item::Str(&request.id)),
        ]);
        core.publish(MessageType::FetchSockets, Some(data), &[]);
        Box::pin(async move {
            collect_from(&mut request, missing, timeout, |(data, _)| {
                sockets.extend(fetched_sockets(&data));
            })
            .await?;
            Ok(sockets)
        })
    }

    fn add_sockets(&self, opts: BroadcastOptions, rooms: Vec<String>) {
        self.core.local.add_sockets(&opts, &rooms);
        if !opts.flags.local {
            self.publish_with_opts(MessageType::SocketsJoin, &opts, "rooms", Item::Strs(&rooms));
        }
    }

    fn del_sockets(&self, opts: BroadcastOptions, rooms: Vec<String>) {
        self.core.local.del_sockets(&opts, &rooms);
        if !opts.flags.local {
            self.publish_with_opts(
                MessageType::SocketsLeave,
                &opts,
                "rooms",
                Item::Strs(&rooms),
            );
        }
    }

    fn disconnect_sockets(&self, opts: BroadcastOptions, close: bool) {
        if !opts.flags.local {
            self.publish_with_opts(
                MessageType::DisconnectSockets,
                &opts,
                "close",
                Item::Bool(close),
            );
        }
        self.core.local.disconnect_sockets(&opts, close);
    }

    fn server_side_emit(
        &self,
        event: Payload,
        ack: Option<Duration>,
    ) -> BoxFuture<'static, Result<Vec<Payload>, AdapterError>> {
        let packet = Value::Array(event.args);
        let Some(timeout) = ack else {
            let data = Item::Map(vec![("packet", Item::Json(&packet))]);
            self.core
                .publish(MessageType::ServerSideEmit, Some(data), &event.attachments);
            return Box::pin(async { Ok(Vec::new()) });
        };
        let missing: HashSet<String> = self.core.nodes.alive().into_iter().collect();
        if missing.is_empty() {
            return Box::pin(async { Ok(Vec::new()) });
        }
        let core = Arc::clone(&self.core);
        let mut request = core.pending.register();
        let data = Item::Map(vec![
            ("requestId", Item::Str(&request.id)),
            ("packet", Item::Json(&packet)),
        ]);
        core.publish(MessageType::ServerSideEmit, Some(data), &event.attachments);
        Box::pin(async move {
            let mut replies = Vec::with_capacity(missing.len());
            collect_from(&mut request, missing, timeout, |(data, attachments)| {
                let args = data.get("packet").cloned().into_iter().collect();
                replies.push(Payload { args, attachments });
            })
            .await?;
            Ok(replies)
        })
    }

    fn server_count(&self) -> BoxFuture<'static, usize> {
        let count = self.core.nodes.count() + 1;
        Box::pin(async move { count })
    }

    fn track_session(&self, session: &PersistedSession) {
        let Some(recovery) = &self.core.recovery else {
            return;
        };
        if !self.core.config.persist_connected_sessions {
            return;
        }
        self.core.connected.track(session);
        let max = recovery.max_disconnection_duration;
        self.write_session(session, max + refresh_period(max));
    }

    fn persist_session(&self, session: PersistedSession) {
        let Some(recovery) = &self.core.recovery else {
            return;
        };
        self.core.connected.untrack(&session.pid);
        // Node's `SET key value PX maxDisconnectionDuration`.
        self.write_session(&session, recovery.max_disconnection_duration);
    }

    fn forget_session(&self, pid: &str) {
        if self.core.connected.untrack(pid) {
            let key = self::session::key(&self.core.config.session_key_prefix, pid);
            self.core.writer.send(Command::Del(key));
        }
    }

    fn restore_session(
        &self,
        pid: String,
        offset: String,
    ) -> BoxFuture<'static, Option<RestoredSession>> {
        if self.core.recovery.is_none() {
            return Box::pin(async { None });
        }
        Box::pin(Arc::clone(&self.core).restore(pid, offset))
    }

    fn close(&self) {
        if self.core.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.core.publish(MessageType::AdapterClose, None, &[]);
        self.namespaces.remove(&self.core);
    }
}

/// Writes the sessions of the connected sockets again every
/// [`refresh_period`], until the adapter is closed or gone.
async fn refresh_sessions(core: std::sync::Weak<StreamsCore>, max: Duration) {
    let period = refresh_period(max);
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let Some(core) = core.upgrade() else { return };
        if core.closed.load(Ordering::Acquire) {
            return;
        }
        for session in core.connected.all() {
            let key = self::session::key(&core.config.session_key_prefix, &session.pid);
            let value = self::session::encode(&session);
            core.writer.send(Command::Set {
                key,
                value,
                ttl: max + period,
            });
        }
    }
}
