//! The Redis adapter, wire-identical to Node's `@socket.io/redis-adapter`
//! 8.x (the classic, non-sharded one).
//!
//! Channels per namespace, under the key prefix (`socket.io` by default):
//! broadcasts on `{key}#{nsp}#` (or `{key}#{nsp}#{room}#` for a single
//! room), requests on `{key}-request#{nsp}#`, responses on
//! `{key}-response#{nsp}#` (and `…{uid}#`). Each namespace's adapter has a
//! random 6-character uid and ignores its own messages. The number of
//! servers is the number of subscribers of the request channel
//! (`PUBSUB NUMSUB`).
//!
//! Connection state recovery is not kept in Redis (Node's Redis adapter
//! does not support it either): with this adapter no session is restored.

mod acks;
mod background;
pub(crate) mod cluster;
mod config;
mod core;
mod factory;
mod link;
mod pending;
mod publisher;
mod remote;
pub(crate) mod sharded;
mod streams;

use std::sync::Arc;
use std::time::Duration;

use fred::interfaces::PubsubInterface;
use iocluster_socketio::Payload;
use iocluster_socketio::adapter::{
    AckReplies, Adapter, AdapterError, BoxFuture, BroadcastOptions, SocketInfo,
};
use iocluster_socketio::parser::Packet;
use serde_json::Value;

pub use self::config::RedisAdapterConfig;
use self::core::AdapterCore;
pub use self::factory::RedisAdapterFactory;
use self::link::Link;
use self::pending::request_timeout;
pub use self::sharded::{ShardedRedisAdapterConfig, ShardedRedisAdapterFactory, SubscriptionMode};
pub use self::streams::{RedisStreamsAdapterConfig, RedisStreamsAdapterFactory};
use crate::wire::{
    self, BroadcastParts, DisconnectRequest, FetchRequest, OptsOrder, RequestOpts, RequestType,
    RoomsRequest, ServerSideEmitRequest,
};

/// One namespace's Redis adapter. Made by [`RedisAdapterFactory`].
pub struct RedisAdapter {
    core: Arc<AdapterCore>,
    link: Arc<Link<AdapterCore>>,
}

impl std::fmt::Debug for RedisAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisAdapter")
            .field("nsp", &self.core.nsp)
            .field("uid", &self.core.uid)
            .finish_non_exhaustive()
    }
}

impl RedisAdapter {
    /// This adapter's uid on the wire.
    pub fn uid(&self) -> &str {
        &self.core.uid
    }

    fn request_opts(opts: &BroadcastOptions) -> RequestOpts<'_> {
        RequestOpts {
            rooms: &opts.rooms,
            except: &opts.except,
        }
    }

    fn publish_json(&self, request: &impl serde::Serialize) {
        match serde_json::to_string(request) {
            Ok(json) => self
                .core
                .publisher
                .publish(self.core.channels.request.clone(), json),
            Err(error) => tracing::warn!(%error, "request not serializable"),
        }
    }

    fn rooms_request(&self, kind: RequestType, opts: &BroadcastOptions, rooms: &[String]) {
        self.publish_json(&RoomsRequest {
            uid: Some(&self.core.uid),
            kind: kind as u8,
            opts: Self::request_opts(opts),
            rooms,
        });
    }
}

/// A `BROADCAST_CLIENT_COUNT` or `BROADCAST_ACK` response.
fn read_ack_response((value, attachments): pending::Response) -> Option<acks::AckResponse> {
    match value.get("type").and_then(RequestType::from_value)? {
        RequestType::BroadcastClientCount => Some(acks::AckResponse::ClientCount(
            value
                .get("clientCount")
                .and_then(Value::as_u64)
                .unwrap_or(0) as usize,
        )),
        RequestType::BroadcastAck => {
            let args = value.get("packet").cloned().into_iter().collect();
            Some(acks::AckResponse::Ack(Payload { args, attachments }))
        }
        _ => None,
    }
}

/// The servers other than this one, from `PUBSUB NUMSUB`.
async fn other_servers(core: &AdapterCore) -> usize {
    core.publisher
        .numsub(&core.channels.request)
        .await
        .unwrap_or(1)
        .saturating_sub(1)
}

impl Adapter for RedisAdapter {
    fn broadcast(&self, packet: Packet, opts: BroadcastOptions) {
        if !opts.flags.local {
            let data = packet.data.clone().unwrap_or(Value::Array(Vec::new()));
            let flags = wire::adapter_flags(&opts.flags);
            let parts = BroadcastParts::new(&self.core.nsp, &data, &packet, &opts, &flags);
            let message = wire::broadcast_message(&self.core.uid, &parts, OptsOrder::Adapter);
            let channel = self.core.channels.broadcast_to(&opts.rooms);
            self.core.publisher.publish(channel, message);
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
        let request = self.core.pending.register();
        opts.flags.timeout = Some(opts.flags.timeout.unwrap_or(timeout.as_millis() as u64));
        let data = packet.data.clone().unwrap_or(Value::Array(Vec::new()));
        let flags = wire::adapter_flags(&opts.flags);
        let parts = BroadcastParts::new(&self.core.nsp, &data, &packet, &opts, &flags);
        let message = wire::broadcast_request(&self.core.uid, &request.id, &parts);
        self.core
            .publisher
            .publish(self.core.channels.request.clone(), message);
        let local = self.core.local.broadcast_with_ack(packet, &opts);
        let core = Arc::clone(&self.core);
        let servers = async move { core.publisher.numsub(&core.channels.request).await };
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
            let json = serde_json::to_string(&FetchRequest {
                uid: &core.uid,
                request_id: &request.id,
                kind: RequestType::RemoteFetch as u8,
                opts: Self::request_opts(&opts),
            })
            .map_err(|e| AdapterError::Unavailable(e.to_string()))?;
            core.publisher.publish(core.channels.request.clone(), json);
            request
                .collect(expected, timeout, |(value, _)| {
                    if let Some(Value::Array(theirs)) = value.get("sockets") {
                        sockets.extend(theirs.iter().filter_map(remote::socket_info));
                    }
                })
                .await?;
            Ok(sockets)
        })
    }

    fn add_sockets(&self, opts: BroadcastOptions, rooms: Vec<String>) {
        self.core.local.add_sockets(&opts, &rooms);
        if !opts.flags.local {
            self.rooms_request(RequestType::RemoteJoin, &opts, &rooms);
        }
    }

    fn del_sockets(&self, opts: BroadcastOptions, rooms: Vec<String>) {
        self.core.local.del_sockets(&opts, &rooms);
        if !opts.flags.local {
            self.rooms_request(RequestType::RemoteLeave, &opts, &rooms);
        }
    }

    fn disconnect_sockets(&self, opts: BroadcastOptions, close: bool) {
        if !opts.flags.local {
            self.publish_json(&DisconnectRequest {
                uid: Some(&self.core.uid),
                kind: RequestType::RemoteDisconnect as u8,
                opts: Self::request_opts(&opts),
                close,
            });
        }
        self.core.local.disconnect_sockets(&opts, close);
    }

    fn server_side_emit(
        &self,
        event: Payload,
        ack: Option<Duration>,
    ) -> BoxFuture<'static, Result<Vec<Payload>, AdapterError>> {
        let data = wire::json_with_buffers(&Value::Array(event.args), &event.attachments);
        let Some(timeout) = ack else {
            self.publish_json(&ServerSideEmitRequest {
                uid: &self.core.uid,
                request_id: None,
                kind: RequestType::ServerSideEmit as u8,
                data,
            });
            return Box::pin(async { Ok(Vec::new()) });
        };
        let core = Arc::clone(&self.core);
        Box::pin(async move {
            let expected = other_servers(&core).await;
            if expected == 0 {
                return Ok(Vec::new());
            }
            let mut request = core.pending.register();
            let json = serde_json::to_string(&ServerSideEmitRequest {
                uid: &core.uid,
                request_id: Some(&request.id),
                kind: RequestType::ServerSideEmit as u8,
                data,
            })
            .map_err(|e| AdapterError::Unavailable(e.to_string()))?;
            core.publisher.publish(core.channels.request.clone(), json);
            let mut replies = Vec::with_capacity(expected);
            request
                .collect(expected, timeout, |(value, attachments)| {
                    let args = value.get("data").cloned().into_iter().collect();
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
        self.link.registry.remove(&self.core);
        let subscriber = self.link.subscriber.clone();
        let (pattern, channels) = self.core.subscriptions();
        self.link.runtime.spawn(async move {
            let _ = subscriber.punsubscribe(pattern).await;
            let _ = subscriber.unsubscribe(channels).await;
        });
    }
}
