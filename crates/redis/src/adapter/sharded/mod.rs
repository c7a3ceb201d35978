//! The sharded Redis adapter, wire-identical to Node's
//! `createShardedAdapter` (@socket.io/redis-adapter 8.x): Redis 7 sharded
//! pub/sub (`SPUBLISH`/`SSUBSCRIBE`), messages of socket.io-adapter's
//! `ClusterAdapter`.
//!
//! Channels per namespace, under the prefix (`socket.io` by default):
//! `{prefix}#{nsp}#` for every message but responses, `{prefix}#{nsp}#{uid}#`
//! for the responses to one server, and in the dynamic modes
//! `{prefix}#{nsp}#{room}#` for broadcasts without acks to exactly one room.
//! The number of servers is the number of subscribers of the namespace
//! channel (`PUBSUB SHARDNUMSUB`, summed over a cluster's nodes), as Node's.

mod config;
mod core;
mod factory;
mod rooms;
pub(crate) mod wire;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use fred::interfaces::PubsubInterface;
use iocluster_socketio::Payload;
use iocluster_socketio::adapter::{
    AckReplies, Adapter, AdapterError, BoxFuture, BroadcastOptions, SocketInfo,
};
use iocluster_socketio::parser::Packet;
use serde_json::Value;

pub use self::config::{ShardedRedisAdapterConfig, SubscriptionMode};
use self::core::ShardedCore;
pub use self::factory::ShardedRedisAdapterFactory;
use self::rooms::RoomSync;
use super::acks::{self, AckResponse};
use super::cluster_wire::{self, Item, MessageType, fetched_sockets};
use super::link::Link;
use super::pending::{Response, request_timeout};

/// One namespace's sharded Redis adapter. Made by
/// [`ShardedRedisAdapterFactory`].
pub struct ShardedRedisAdapter {
    core: Arc<ShardedCore>,
    link: Arc<Link<ShardedCore>>,
    rooms: Option<Arc<RoomSync>>,
}

impl std::fmt::Debug for ShardedRedisAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedRedisAdapter")
            .field("nsp", &self.core.nsp)
            .field("uid", &self.core.uid)
            .finish_non_exhaustive()
    }
}

impl ShardedRedisAdapter {
    /// This adapter's uid on the wire.
    pub fn uid(&self) -> &str {
        &self.core.uid
    }

    /// Publishes `{opts, <key>: <item>}` (joins, leaves, disconnects).
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
        self.core
            .publish(self.core.channel.clone(), kind, Some(data), &[]);
    }
}

/// The servers other than this one, from `PUBSUB SHARDNUMSUB`.
async fn other_servers(core: &ShardedCore) -> usize {
    core.publisher
        .numsub(&core.channel)
        .await
        .unwrap_or(1)
        .saturating_sub(1)
}

/// A `BROADCAST_CLIENT_COUNT` or `BROADCAST_ACK` response (its `data`,
/// with its `type`).
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

impl Adapter for ShardedRedisAdapter {
    fn broadcast(&self, packet: Packet, opts: BroadcastOptions) {
        if !opts.flags.local {
            let core = &self.core;
            let data = packet.data.clone().unwrap_or(Value::Array(Vec::new()));
            let flags = crate::wire::adapter_flags(&opts.flags);
            let message = Item::Map(vec![
                ("packet", cluster_wire::packet(&data)),
                (
                    "opts",
                    cluster_wire::opts(&opts.rooms, &opts.except, &flags),
                ),
            ]);
            let channel = core.channel_for(&opts, false);
            core.publish(
                channel,
                MessageType::Broadcast,
                Some(message),
                &packet.attachments,
            );
        }
        self.core.local.broadcast_packet(&packet, &opts);
    }

    fn broadcast_with_ack(
        &self,
        packet: Packet,
        mut opts: BroadcastOptions,
        timeout: Duration,
    ) -> BoxFuture<'static, AckReplies> {
        if opts.flags.local {
            let acks = self.core.local.broadcast_with_ack(packet, &opts);
            return Box::pin(acks.collect(timeout));
        }
        let core = &self.core;
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
        core.publish(
            core.channel_for(&opts, true),
            MessageType::Broadcast,
            Some(message),
            &packet.attachments,
        );
        let local = core.local.broadcast_with_ack(packet, &opts);
        let counting = Arc::clone(core);
        let servers = async move { counting.publisher.numsub(&counting.channel).await };
        Box::pin(acks::collect(
            servers,
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
        if opts.flags.local {
            return Box::pin(async move { Ok(sockets) });
        }
        let core = Arc::clone(&self.core);
        let timeout = request_timeout(&opts.flags, core.config.requests_timeout);
        Box::pin(async move {
            let expected = other_servers(&core).await;
            if expected == 0 {
                return Ok(sockets);
            }
            let mut request = core.pending.register();
            let flags = crate::wire::adapter_flags(&opts.flags);
            let data = Item::Map(vec![
                (
                    "opts",
                    cluster_wire::opts(&opts.rooms, &opts.except, &flags),
                ),
                ("requestId", Item::Str(&request.id)),
            ]);
            core.publish(
                core.channel.clone(),
                MessageType::FetchSockets,
                Some(data),
                &[],
            );
            request
                .collect(expected, timeout, |(data, _)| {
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
            self.core.publish(
                self.core.channel.clone(),
                MessageType::ServerSideEmit,
                Some(data),
                &event.attachments,
            );
            return Box::pin(async { Ok(Vec::new()) });
        };
        let core = Arc::clone(&self.core);
        let attachments = event.attachments;
        Box::pin(async move {
            let expected = other_servers(&core).await;
            if expected == 0 {
                return Ok(Vec::new());
            }
            let mut request = core.pending.register();
            let data = Item::Map(vec![
                ("requestId", Item::Str(&request.id)),
                ("packet", Item::Json(&packet)),
            ]);
            core.publish(
                core.channel.clone(),
                MessageType::ServerSideEmit,
                Some(data),
                &attachments,
            );
            let mut replies = Vec::with_capacity(expected);
            request
                .collect(expected, timeout, |(data, attachments)| {
                    let args = data.get("packet").cloned().into_iter().collect();
                    replies.push(Payload { args, attachments });
                })
                .await?;
            Ok(replies)
        })
    }

    fn server_count(&self) -> BoxFuture<'static, usize> {
        let core = Arc::clone(&self.core);
        Box::pin(async move { other_servers(&core).await + 1 })
    }

    fn close(&self) {
        self.core.closed.store(true, Ordering::Release);
        self.link.registry.remove(&self.core);
        if let Some(rooms) = &self.rooms {
            rooms.close();
        }
        let subscriber = self.link.subscriber.clone();
        let channels = [
            self.core.channel.clone(),
            self.core.response_channel.clone(),
        ];
        self.link.runtime.spawn(async move {
            for channel in channels {
                let _ = subscriber.sunsubscribe(channel).await;
            }
        });
    }
}
