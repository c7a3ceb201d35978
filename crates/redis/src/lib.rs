//! Socket.IO across machines through Redis, wire-compatible with Node:
//! [`RedisAdapter`] speaks `@socket.io/redis-adapter` 8.x (`createAdapter`),
//! [`ShardedRedisAdapterFactory`] its `createShardedAdapter` (Redis 7 sharded
//! pub/sub), [`RedisStreamsAdapterFactory`] `@socket.io/redis-streams-adapter` 0.2
//! and [`Emitter`] speaks `@socket.io/redis-emitter` 5.x, so
//! iocluster servers, Node socket.io servers and Node emitters share one
//! Redis.
//!
//! - [`msgpack`]: notepack.io's MessagePack, byte for byte.
//! - [`Emitter`]: broadcasts and room/disconnect requests from a process
//!   that serves no clients.
//! - [`RedisAdapterFactory`]: the adapter of every namespace of a
//!   [`Server`](iocluster_socketio::Server), over one pair of Redis
//!   connections.
//! - [`ShardedRedisAdapterFactory`]: the same over `SPUBLISH`/`SSUBSCRIBE`,
//!   with Node's subscription modes ([`SubscriptionMode`]).
//! - [`RedisStreamsAdapterFactory`]: the same through one Redis stream,
//!   with connection state recovery across servers.
//!
//! URLs: `redis://`, `rediss://` (TLS), `redis-cluster://`,
//! `redis-sentinel://…?sentinelServiceName=NAME`, with `user:password@`.
//!
//! ```no_run
//! use iocluster_redis::{RedisAdapterConfig, RedisAdapterFactory};
//! use iocluster_socketio::{Server, ServerConfig};
//!
//! # async fn run() -> Result<(), iocluster_redis::Error> {
//! let factory = RedisAdapterFactory::connect("redis://127.0.0.1:6379", RedisAdapterConfig::default()).await?;
//! let io = Server::with_adapter(ServerConfig::default(), factory);
//! io.emit("hello", "every client of every server");
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod adapter;
mod channels;
mod emitter;
mod error;
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod fuzz;
pub mod msgpack;
mod redis;
mod stats;
mod uid;
mod wire;

#[cfg(test)]
mod vectors;

pub use adapter::{
    RedisAdapter, RedisAdapterConfig, RedisAdapterFactory, RedisStreamsAdapterConfig,
    RedisStreamsAdapterFactory, ShardedRedisAdapterConfig, ShardedRedisAdapterFactory,
    SubscriptionMode,
};
pub use emitter::{Emitter, EmitterOperator};
pub use error::Error;
pub use redis::{connect_client, connect_subscriber};
pub use stats::RedisStats;

pub use fred;
