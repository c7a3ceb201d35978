//! How the sharded adapter's messages travel: `SPUBLISH` on the
//! namespace's channel (a room's channel for some broadcasts), responses on
//! the requester's own channel, servers counted with `PUBSUB SHARDNUMSUB`
//! (Node's `ShardedRedisAdapter.doPublish`, `doPublishResponse`,
//! `serverCount`).

use std::sync::Arc;

use bytes::Bytes;
use fred::interfaces::PubsubInterface;
use iocluster_socketio::adapter::{BoxFuture, BroadcastOptions};
use tokio::sync::watch;

use super::config::{ShardedRedisAdapterConfig, SubscriptionMode};
use super::rooms::RoomSync;
use super::wire;
use crate::adapter::cluster::wire::{Item, MessageType};
use crate::adapter::cluster::{ClusterCore, Others, Responder, Transport};
use crate::adapter::link::{Link, Listener};
use crate::adapter::publisher::Publisher;

/// Whether a room name looks like a socket id to Node (`length === 20`,
/// counted in UTF-16 units as JavaScript does).
pub(super) fn looks_like_a_socket_id(room: &str) -> bool {
    room.encode_utf16().count() == 20
}

/// A namespace's sharded adapter.
pub(crate) type ShardedCore = ClusterCore<Sharded>;

/// The sharded adapter's own part of a namespace's core.
pub(crate) struct Sharded {
    /// `{prefix}#{nsp}#`: every message but responses and one-room
    /// broadcasts of the dynamic modes.
    pub(super) channel: String,
    pub(super) publisher: Publisher,
    pub(super) config: ShardedRedisAdapterConfig,
    /// Whether Redis confirmed the namespace's subscriptions.
    pub(super) subscribed: watch::Sender<bool>,
}

/// What a namespace's sharded adapter holds besides its core.
pub(crate) struct ShardedHandle {
    pub(super) link: Arc<Link<ShardedCore>>,
    /// The room subscriptions of the dynamic modes.
    pub(super) rooms: Option<Arc<RoomSync>>,
}

impl Sharded {
    /// `{prefix}#{nsp}#{room}#`: a room's channel in the dynamic modes.
    pub(super) fn room_channel(&self, room: &str) -> String {
        format!("{}{room}#", self.channel)
    }

    /// Where a broadcast is published (Node's `computeChannel`): without
    /// acks to exactly one room it goes to the room's channel in the
    /// dynamic modes ("dynamic": unless the room looks like a socket id).
    fn channel_for(&self, opts: &BroadcastOptions, with_ack: bool) -> String {
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
}

impl ShardedCore {
    /// `{prefix}#{nsp}#{uid}#`: responses to this server.
    pub(super) fn response_channel(&self) -> String {
        format!("{}{}#", self.transport.channel, self.uid)
    }

    /// Whether this server listens on `room`'s own channel (Node's
    /// `shouldUseASeparateNamespace`): never in "static"; for rooms that
    /// are not a socket's own in "dynamic"; always in "dynamic-private".
    pub(super) fn subscribes_to_room(&self, room: &str) -> bool {
        match self.transport.config.subscription_mode {
            SubscriptionMode::Static => false,
            SubscriptionMode::Dynamic => !self.local.has_socket(room),
            SubscriptionMode::DynamicPrivate => true,
        }
    }
}

impl Transport for Sharded {
    type Handle = ShardedHandle;

    fn send(
        core: &ShardedCore,
        kind: MessageType,
        data: Option<Item<'_>>,
        attachments: &[Bytes],
        broadcast: Option<(&BroadcastOptions, bool)>,
    ) {
        let sharded = &core.transport;
        let channel = match broadcast {
            Some((opts, with_ack)) => sharded.channel_for(opts, with_ack),
            None => sharded.channel.clone(),
        };
        let message = wire::encode(kind, data, &core.uid, &core.nsp, attachments);
        sharded.publisher.publish(channel, message);
    }

    fn responder(core: &ShardedCore, requester: &str) -> Responder {
        let channel = format!("{}{requester}#", core.transport.channel);
        let publisher = core.transport.publisher.clone();
        let (uid, nsp) = (core.uid.clone(), core.nsp.clone());
        Arc::new(move |kind, data, attachments| {
            let message = wire::encode(kind, Some(data), &uid, &nsp, attachments);
            publisher.publish(channel.clone(), message);
        })
    }

    fn others(core: &Arc<ShardedCore>) -> BoxFuture<'static, Others> {
        let core = Arc::clone(core);
        Box::pin(async move {
            let sharded = &core.transport;
            let subscribers = sharded.publisher.numsub(&sharded.channel).await;
            Others::Count(subscribers.unwrap_or(1).saturating_sub(1))
        })
    }

    fn close(core: &Arc<ShardedCore>, handle: &ShardedHandle) {
        handle.link.registry.remove(core);
        if let Some(rooms) = &handle.rooms {
            rooms.close();
        }
        let subscriber = handle.link.subscriber.clone();
        let channels = [core.transport.channel.clone(), core.response_channel()];
        handle.link.runtime.spawn(async move {
            for channel in channels {
                let _ = subscriber.sunsubscribe(channel).await;
            }
        });
    }
}

impl Listener for ShardedCore {
    fn nsp(&self) -> &str {
        &self.nsp
    }

    fn on_message(&self, channel: &str, bytes: &Bytes) {
        if !channel.starts_with(&self.transport.channel) {
            return;
        }
        let message = match wire::decode(bytes) {
            Ok(message) => message,
            Err(error) => {
                tracing::debug!(%error, channel, "ignoring malformed message");
                return self.count_malformed("undecodable message");
            }
        };
        if message.uid == self.uid || message.nsp != self.nsp {
            return;
        }
        ClusterCore::on_message(self, message, None);
    }
}
