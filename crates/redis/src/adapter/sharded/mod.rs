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
mod factory;
mod rooms;
mod transport;
pub(crate) mod wire;

pub use self::config::{ShardedRedisAdapterConfig, SubscriptionMode};
pub use self::factory::ShardedRedisAdapterFactory;
