//! One namespace's sharded adapter state, and what it does with the
//! messages of other servers (Node's `ClusterAdapter.onMessage` and
//! `onResponse`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use iocluster_socketio::adapter::{BroadcastOptions, LocalNamespace, SocketInfo};
use iocluster_socketio::{Payload, ServerAck};
use serde_json::Value;
use tokio::sync::watch;

use super::config::{ShardedRedisAdapterConfig, SubscriptionMode};
use super::wire;
use crate::adapter::cluster_wire::{Incoming, Item, MessageType, reply_data, rooms, wire_opts};
use crate::adapter::link::Listener;
use crate::adapter::pending::{Pending, request_timeout};
use crate::adapter::publisher::Publisher;

/// Whether a room name looks like a socket id to Node (`length === 20`,
/// counted in UTF-16 units as JavaScript does).
pub(super) fn looks_like_a_socket_id(room: &str) -> bool {
    room.encode_utf16().count() == 20
}

/// A namespace's sharded adapter: its uid, channels, requests in flight,
/// and the local namespace it acts on.
pub(crate) struct ShardedCore {
    pub(super) nsp: String,
    pub(super) uid: String,
    /// `{prefix}#{nsp}#`: every message but responses and one-room
    /// broadcasts of the dynamic modes.
    pub(super) channel: String,
    /// `{prefix}#{nsp}#{uid}#`: responses to this server.
    pub(super) response_channel: String,
    pub(super) local: LocalNamespace,
    pub(super) publisher: Publisher,
    pub(super) config: ShardedRedisAdapterConfig,
    pub(super) pending: Pending,
    pub(super) subscribed: watch::Sender<bool>,
    /// Messages on our channels that could not be read (shared by the
    /// factory's adapters).
    pub(super) malformed: Arc<AtomicU64>,
    /// Set by `close`: subscriptions are no longer tried.
    pub(super) closed: AtomicBool,
}

impl ShardedCore {
    /// `{prefix}#{nsp}#{room}#`: a room's channel in the dynamic modes.
    pub(super) fn room_channel(&self, room: &str) -> String {
        format!("{}{room}#", self.channel)
    }

    /// Where a message is published (Node's `computeChannel`): a broadcast
    /// without acks to exactly one room goes to the room's channel in the
    /// dynamic modes ("dynamic": unless the room looks like a socket id).
    pub(super) fn channel_for(&self, opts: &BroadcastOptions, with_ack: bool) -> String {
        match (
            opts.rooms.as_slice(),
            self.config.subscription_mode,
            with_ack,
        ) {
            ([room], SubscriptionMode::DynamicPrivate, false) => self.room_channel(room),
            ([room], SubscriptionMode::Dynamic, false) if !looks_like_a_socket_id(room) => {
                self.room_channel(room)
            }
            _ => self.channel.clone(),
        }
    }

    /// Whether this server listens on `room`'s own channel (Node's
    /// `shouldUseASeparateNamespace`): never in "static"; for rooms that
    /// are not a socket's own in "dynamic"; always in "dynamic-private".
    pub(super) fn subscribes_to_room(&self, room: &str) -> bool {
        match self.config.subscription_mode {
            SubscriptionMode::Static => false,
            SubscriptionMode::Dynamic => !self.local.has_socket(room),
            SubscriptionMode::DynamicPrivate => true,
        }
    }

    /// Publishes a message of ours on `channel`.
    pub(super) fn publish(
        &self,
        channel: String,
        kind: MessageType,
        data: Option<Item<'_>>,
        attachments: &[Bytes],
    ) {
        let message = wire::encode(kind, data, &self.uid, &self.nsp, attachments);
        self.publisher.publish(channel, message);
    }

    /// Publishes a response on the requester's channel.
    fn respond(&self, requester: &str, kind: MessageType, data: Item<'_>, attachments: &[Bytes]) {
        let channel = format!("{}{requester}#", self.channel);
        self.publish(channel, kind, Some(data), attachments);
    }

    fn on_request(&self, message: Incoming) {
        let opts = || wire_opts(&message.data);
        match message.kind {
            MessageType::Broadcast => self.on_broadcast(message),
            MessageType::SocketsJoin => self.local.add_sockets(&opts(), &rooms(&message.data)),
            MessageType::SocketsLeave => self.local.del_sockets(&opts(), &rooms(&message.data)),
            MessageType::DisconnectSockets => {
                let close = message.data.get("close").and_then(Value::as_bool);
                self.local
                    .disconnect_sockets(&opts(), close.unwrap_or(false));
            }
            MessageType::FetchSockets => self.answer_fetch(&message),
            MessageType::ServerSideEmit => self.on_server_side_emit(message),
            // Node's sharded adapter sends no heartbeats (it counts servers
            // with `PUBSUB SHARDNUMSUB`) and ignores them.
            MessageType::InitialHeartbeat | MessageType::Heartbeat | MessageType::AdapterClose => {}
            kind if kind.is_response() => self.on_response(message),
            _ => {}
        }
    }

    fn on_response(&self, message: Incoming) {
        let Some(id) = message.str("requestId").map(str::to_owned) else {
            return;
        };
        let Incoming {
            kind,
            data,
            attachments,
            ..
        } = message;
        let mut value = data;
        if let Value::Object(map) = &mut value {
            map.insert("type".to_owned(), Value::from(kind as u8));
        }
        self.pending.deliver(&id, (value, attachments));
    }

    fn on_broadcast(&self, message: Incoming) {
        let Some(mut packet) = message.data.get("packet").cloned() else {
            self.malformed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        // socket.io 4.8 publishes packets without `nsp`: the message's.
        if let Value::Object(map) = &mut packet {
            map.entry("nsp")
                .or_insert_with(|| Value::String(message.nsp.clone()));
        }
        let packet = match crate::wire::packet_of(packet, message.attachments.clone()) {
            Ok(packet) if packet.nsp == self.nsp => packet,
            _ => {
                self.malformed.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        let opts = wire_opts(&message.data);
        let Some(id) = message.str("requestId").map(str::to_owned) else {
            self.local.broadcast_packet(&packet, &opts);
            return;
        };
        let timeout = request_timeout(&opts.flags, self.config.requests_timeout);
        let mut acks = self.local.broadcast_with_ack(packet, &opts);
        let count = acks.expected as u64;
        self.respond(
            &message.uid,
            MessageType::BroadcastClientCount,
            Item::Map(vec![
                ("requestId", Item::Str(&id)),
                ("clientCount", Item::UInt(count)),
            ]),
            &[],
        );
        if acks.expected == 0 {
            return;
        }
        let channel = format!("{}{}#", self.channel, message.uid);
        let (publisher, uid, nsp) = (self.publisher.clone(), self.uid.clone(), self.nsp.clone());
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            while let Ok(Some(reply)) = tokio::time::timeout_at(deadline, acks.next()).await {
                // Node's adapter forwards the first argument of a reply.
                let data = reply_data(&id, reply.args.first());
                let message = wire::encode(
                    MessageType::BroadcastAck,
                    Some(data),
                    &uid,
                    &nsp,
                    &reply.attachments,
                );
                publisher.publish(channel.clone(), message);
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
        self.respond(
            &message.uid,
            MessageType::FetchSocketsResponse,
            Item::Map(vec![
                ("requestId", Item::Str(id)),
                ("sockets", Item::Json(&sockets)),
            ]),
            &[],
        );
    }

    fn on_server_side_emit(&self, message: Incoming) {
        let Some(Value::Array(args)) = message.data.get("packet").cloned() else {
            self.malformed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let payload = Payload {
            args,
            attachments: message.attachments.clone(),
        };
        let reply: Option<ServerAck> = message.str("requestId").map(|id| {
            let id = id.to_owned();
            let channel = format!("{}{}#", self.channel, message.uid);
            let (publisher, uid, nsp) =
                (self.publisher.clone(), self.uid.clone(), self.nsp.clone());
            let reply: ServerAck = Box::new(move |reply: Payload| {
                // Node forwards the first argument of the reply only.
                let data = reply_data(&id, reply.args.first());
                let message = wire::encode(
                    MessageType::ServerSideEmitResponse,
                    Some(data),
                    &uid,
                    &nsp,
                    &reply.attachments,
                );
                publisher.publish(channel, message);
            });
            reply
        });
        self.local.server_side_event(payload, reply);
    }
}

impl Listener for ShardedCore {
    fn nsp(&self) -> &str {
        &self.nsp
    }

    fn on_message(&self, channel: &str, bytes: &Bytes) {
        if !channel.starts_with(&self.channel) {
            return;
        }
        let message = match wire::decode(bytes) {
            Ok(message) => message,
            Err(error) => {
                self.malformed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%error, channel, "ignoring malformed message");
                return;
            }
        };
        if message.uid == self.uid || message.nsp != self.nsp {
            return;
        }
        if channel == self.response_channel || message.kind.is_response() {
            self.on_response(message);
        } else {
            self.on_request(message);
        }
    }
}
