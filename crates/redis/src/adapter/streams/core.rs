//! One namespace's streams adapter state, and what it does with the
//! entries of the stream (Node's `ClusterAdapterWithHeartbeat.onMessage`
//! and `onResponse`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use fred::clients::Client;
use iocluster_socketio::adapter::{LocalNamespace, SocketInfo};
use iocluster_socketio::{Payload, RecoveryConfig, ServerAck};
use serde_json::Value;

use super::config::RedisStreamsAdapterConfig;
use super::entry;
use super::id::StreamId;
use super::nodes::Nodes;
use super::reader::ReaderHandle;
use super::session::Connected;
use super::writer::{Command, Writer};
use crate::adapter::cluster_wire::{Incoming, Item, MessageType, reply_data, rooms, wire_opts};
use crate::adapter::pending::{Pending, request_timeout};

/// A namespace's streams adapter: its uid, the servers it knows, requests
/// in flight, and the local namespace it acts on.
pub(crate) struct StreamsCore {
    pub(crate) nsp: String,
    pub(crate) uid: String,
    pub(super) local: LocalNamespace,
    pub(super) writer: Writer,
    /// For reads of ours besides the stream's (`XRANGE`, sessions).
    pub(super) client: Client,
    pub(super) reader: Arc<ReaderHandle>,
    pub(super) config: RedisStreamsAdapterConfig,
    pub(super) pending: Pending,
    pub(super) nodes: Nodes,
    /// The server's recovery options, when recovery is on.
    pub(super) recovery: Option<RecoveryConfig>,
    pub(super) connected: Connected,
    pub(super) malformed: Arc<AtomicU64>,
    pub(super) closed: AtomicBool,
    /// When this adapter last wrote to the stream (ms on `epoch`).
    pub(super) last_write: AtomicU64,
    pub(super) epoch: tokio::time::Instant,
}

impl StreamsCore {
    /// Writes a message of ours to the stream.
    pub(super) fn publish(&self, kind: MessageType, data: Option<Item<'_>>, attachments: &[Bytes]) {
        let fields = entry::fields(kind, data, &self.uid, &self.nsp, attachments);
        self.writer.send(Command::Append(fields));
        self.last_write
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Whether recovery records this broadcast: an event without ack, not
    /// volatile (Node's `addOffsetIfNecessary`), with recovery on.
    pub(super) fn records(&self, has_ack: bool, volatile: bool) -> bool {
        self.recovery.is_some() && !has_ack && !volatile
    }

    /// An entry of the stream for this namespace.
    pub(crate) fn on_entry(&self, message: Incoming, id: StreamId) {
        if message.uid == self.uid {
            // Our own broadcasts that recovery records reach our clients
            // here, with their offset, in the stream's order.
            if message.kind == MessageType::Broadcast && message.str("requestId").is_none() {
                let opts = wire_opts(&message.data);
                if self.records(false, opts.flags.volatile) {
                    self.on_broadcast(message, id);
                }
            }
            return;
        }
        self.nodes.seen(&message.uid);
        match message.kind {
            MessageType::InitialHeartbeat => self.publish(MessageType::Heartbeat, None, &[]),
            MessageType::Heartbeat => {}
            MessageType::AdapterClose => self.nodes.remove(&message.uid),
            MessageType::Broadcast => self.on_broadcast(message, id),
            MessageType::SocketsJoin => self
                .local
                .add_sockets(&wire_opts(&message.data), &rooms(&message.data)),
            MessageType::SocketsLeave => self
                .local
                .del_sockets(&wire_opts(&message.data), &rooms(&message.data)),
            MessageType::DisconnectSockets => {
                let close = message.data.get("close").and_then(Value::as_bool);
                self.local
                    .disconnect_sockets(&wire_opts(&message.data), close.unwrap_or(false));
            }
            MessageType::FetchSockets => self.answer_fetch(&message),
            MessageType::ServerSideEmit => self.on_server_side_emit(message),
            kind if kind.is_response() => self.on_response(message),
            _ => {}
        }
    }

    fn count_malformed(&self, why: &str) {
        self.malformed.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(nsp = self.nsp, why, "skipping a malformed stream entry");
    }

    fn on_response(&self, message: Incoming) {
        let Some(id) = message.str("requestId").map(str::to_owned) else {
            return;
        };
        if !self.pending.contains(&id) {
            // Every server reads every response: most are not ours.
            return;
        }
        let Incoming {
            kind,
            uid,
            data,
            attachments,
            ..
        } = message;
        let mut value = data;
        if let Value::Object(map) = &mut value {
            map.insert("type".to_owned(), Value::from(kind as u8));
            map.insert("uid".to_owned(), Value::String(uid));
        }
        self.pending.deliver(&id, (value, attachments));
    }

    fn on_broadcast(&self, message: Incoming, id: StreamId) {
        let Some(mut packet) = message.data.get("packet").cloned() else {
            return self.count_malformed("broadcast without packet");
        };
        // socket.io 4.8 publishes packets without `nsp`: the message's.
        if let Value::Object(map) = &mut packet {
            map.entry("nsp")
                .or_insert_with(|| Value::String(message.nsp.clone()));
        }
        let mut packet = match crate::wire::packet_of(packet, message.attachments.clone()) {
            Ok(packet) if packet.nsp == self.nsp => packet,
            _ => return self.count_malformed("broadcast packet is not an event"),
        };
        let opts = wire_opts(&message.data);
        let Some(request) = message.str("requestId").map(str::to_owned) else {
            if self.records(false, opts.flags.volatile)
                && let Some(Value::Array(args)) = &mut packet.data
            {
                args.push(Value::String(id.to_string()));
            }
            self.local.broadcast_packet(&packet, &opts);
            return;
        };
        let timeout = request_timeout(&opts.flags, self.config.requests_timeout);
        let mut acks = self.local.broadcast_with_ack(packet, &opts);
        self.publish(
            MessageType::BroadcastClientCount,
            Some(Item::Map(vec![
                ("requestId", Item::Str(&request)),
                ("clientCount", Item::UInt(acks.expected as u64)),
            ])),
            &[],
        );
        if acks.expected == 0 {
            return;
        }
        let (writer, uid, nsp) = (self.writer.clone(), self.uid.clone(), self.nsp.clone());
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            while let Ok(Some(reply)) = tokio::time::timeout_at(deadline, acks.next()).await {
                // Node's adapter forwards the first argument of a reply.
                let data = reply_data(&request, reply.args.first());
                let fields = entry::fields(
                    MessageType::BroadcastAck,
                    Some(data),
                    &uid,
                    &nsp,
                    &reply.attachments,
                );
                writer.send(Command::Append(fields));
            }
        });
    }

    fn answer_fetch(&self, message: &Incoming) {
        let Some(id) = message.str("requestId") else {
            return;
        };
        let sockets: Vec<SocketInfo> = self.local.fetch_sockets(&wire_opts(&message.data));
        let sockets = match serde_json::to_value(sockets) {
            Ok(sockets) => sockets,
            Err(error) => {
                tracing::warn!(%error, "sockets not serializable");
                return;
            }
        };
        self.publish(
            MessageType::FetchSocketsResponse,
            Some(Item::Map(vec![
                ("requestId", Item::Str(id)),
                ("sockets", Item::Json(&sockets)),
            ])),
            &[],
        );
    }

    fn on_server_side_emit(&self, message: Incoming) {
        let Some(Value::Array(args)) = message.data.get("packet").cloned() else {
            return self.count_malformed("server-side emit without packet");
        };
        let payload = Payload {
            args,
            attachments: message.attachments.clone(),
        };
        let reply: Option<ServerAck> = message.str("requestId").map(|id| {
            let id = id.to_owned();
            let (writer, uid, nsp) = (self.writer.clone(), self.uid.clone(), self.nsp.clone());
            let reply: ServerAck = Box::new(move |reply: Payload| {
                // Node forwards the first argument of the reply only.
                let data = reply_data(&id, reply.args.first());
                let fields = entry::fields(
                    MessageType::ServerSideEmitResponse,
                    Some(data),
                    &uid,
                    &nsp,
                    &reply.attachments,
                );
                writer.send(Command::Append(fields));
            });
            reply
        });
        self.local.server_side_event(payload, reply);
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
        if core.closed.load(Ordering::Acquire) {
            return;
        }
        let last = core.epoch + Duration::from_millis(core.last_write.load(Ordering::Relaxed));
        if tokio::time::Instant::now() >= last + interval {
            core.publish(MessageType::Heartbeat, None, &[]);
            next = tokio::time::Instant::now() + interval;
        } else {
            next = last + interval;
        }
    }
}
