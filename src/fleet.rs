//! How the workers of a node sync with each other and with other nodes:
//! through their master (the cluster adapter: one machine, no Redis), or
//! through Redis (every worker a peer of a fleet wire-compatible with Node's
//! `@socket.io/redis-adapter`). This is the one place that picks the
//! adapter: the cluster crate takes whatever it is given.
//!
//! The master passes the choice to its workers in their environment, so a
//! worker program of your own (`iocluster --redis URL -- ./my-worker`) syncs
//! the way the master was told, as the built-in app does. Each worker
//! connects its adapter once its runtime runs.
//!
//! ```no_run
//! use iocluster::Fleet;
//!
//! fn main() -> Result<(), iocluster::cluster::ClusterError> {
//!     Fleet::Local.cluster().workers(2).build().run(|worker| {
//!         let io = worker.socketio(worker.socketio_config());
//!         io.router()
//!     })
//! }
//! ```

use std::sync::Arc;

use iocluster_cluster::{AdapterConnect, Cluster, ClusterBuilder, CounterSource, Metric};
use iocluster_redis::{
    RedisAdapterFactory, RedisStats, RedisStreamsAdapterConfig, RedisStreamsAdapterFactory,
    ShardedRedisAdapterConfig, ShardedRedisAdapterFactory, SubscriptionMode,
};
use iocluster_socketio::adapter::AdapterFactory;

/// The variables through which a master tells its workers how to sync.
mod vars {
    /// The Redis URL; empty or unset: through the master.
    pub(super) const REDIS: &str = "IOCLUSTER_WORKER_REDIS";
    /// The sharded adapter's subscription mode; empty or unset: the
    /// classic adapter.
    pub(super) const REDIS_SHARDED: &str = "IOCLUSTER_WORKER_REDIS_SHARDED";
    /// The stream of the streams adapter; empty or unset: a pub/sub
    /// adapter.
    pub(super) const REDIS_STREAM: &str = "IOCLUSTER_WORKER_REDIS_STREAM";
    /// The stream's approximate length bound (with `REDIS_STREAM`).
    pub(super) const REDIS_STREAM_MAXLEN: &str = "IOCLUSTER_WORKER_REDIS_STREAM_MAXLEN";
}

/// How the workers of a node reach each other and the other nodes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Fleet {
    /// Through the master, with the cluster adapter (one machine).
    #[default]
    Local,
    /// Through Redis, wire-compatible with Node's Redis adapters.
    Redis {
        /// `redis://`, `rediss://`, `redis-cluster://` or
        /// `redis-sentinel://` URL.
        url: String,
        /// Redis 7 sharded pub/sub (Node's `createShardedAdapter`) in this
        /// subscription mode; none: the classic `createAdapter`.
        sharded: Option<SubscriptionMode>,
    },
    /// Through one Redis stream, wire-compatible with Node's
    /// `@socket.io/redis-streams-adapter`, with connection state recovery
    /// across nodes (sessions and missed broadcasts live in Redis).
    RedisStreams {
        /// `redis://`, `rediss://` or `redis-sentinel://` URL.
        url: String,
        /// The stream's name (Node's `streamName`, default `socket.io`).
        stream: String,
        /// The stream's approximate length bound (Node's `maxLen`, default
        /// 10,000): how far back a client can recover.
        max_len: u64,
    },
}

impl Fleet {
    /// A cluster builder for this fleet: its master passes the choice to
    /// the workers, and each worker connects the adapter it names.
    pub fn cluster(&self) -> ClusterBuilder {
        let mut builder = Cluster::builder();
        for (name, value) in self.worker_env() {
            builder = builder.worker_env(name, value);
        }
        let connect: AdapterConnect =
            Arc::new(|| Box::pin(async { Fleet::from_worker_env()?.connect().await }));
        let redis_counters: CounterSource = Arc::new(|| {
            // Only a worker that connected a Redis adapter has any to show.
            if !matches!(
                Fleet::from_worker_env(),
                Ok(Fleet::Redis { .. } | Fleet::RedisStreams { .. })
            ) {
                return Vec::new();
            }
            let stats = RedisStats::now();
            vec![
                Metric::counter(
                    "iocluster_redis_published",
                    "Publications handed to Redis.",
                    stats.published,
                ),
                Metric::counter(
                    "iocluster_redis_dropped",
                    "Publications dropped: the queue for Redis was full (Redis away or slow), or a publication failed.",
                    stats.dropped,
                ),
                Metric::counter(
                    "iocluster_redis_reconnects",
                    "Reconnections to Redis.",
                    stats.reconnects,
                ),
            ]
        });
        let builder = builder.adapter(connect).counters(redis_counters);
        // Nodes synced through Redis find each other there too.
        match self {
            Fleet::Redis { url, .. } | Fleet::RedisStreams { url, .. } => {
                builder.peer_directory(crate::peers::RedisPeerDirectory::connector(url.clone()))
            }
            Fleet::Local => builder,
        }
    }

    /// The variables a master sets for its workers (set even when empty,
    /// so that a worker never inherits a stale choice).
    fn worker_env(&self) -> [(&'static str, String); 4] {
        let (url, sharded, stream, max_len) = match self {
            Fleet::Local => ("", "", "", String::new()),
            Fleet::Redis { url, sharded } => (
                url.as_str(),
                sharded.map_or("", |m| m.as_str()),
                "",
                String::new(),
            ),
            Fleet::RedisStreams {
                url,
                stream,
                max_len,
            } => (url.as_str(), "", stream.as_str(), max_len.to_string()),
        };
        [
            (vars::REDIS, url.to_owned()),
            (vars::REDIS_SHARDED, sharded.to_owned()),
            (vars::REDIS_STREAM, stream.to_owned()),
            (vars::REDIS_STREAM_MAXLEN, max_len),
        ]
    }

    /// The choice the master passed to this worker process.
    fn from_worker_env() -> Result<Fleet, String> {
        let var = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
        let Some(url) = var(vars::REDIS) else {
            return Ok(Fleet::Local);
        };
        if let Some(stream) = var(vars::REDIS_STREAM) {
            let max_len = match var(vars::REDIS_STREAM_MAXLEN) {
                Some(n) => n
                    .parse()
                    .map_err(|_| format!("{}: not a number: {n}", vars::REDIS_STREAM_MAXLEN))?,
                None => RedisStreamsAdapterConfig::default().max_len,
            };
            return Ok(Fleet::RedisStreams {
                url,
                stream,
                max_len,
            });
        }
        let sharded = var(vars::REDIS_SHARDED)
            .map(|mode| mode.parse::<SubscriptionMode>())
            .transpose()?;
        Ok(Fleet::Redis { url, sharded })
    }

    /// Connects the adapter of this fleet; none for the cluster adapter.
    async fn connect(&self) -> Result<Option<Arc<dyn AdapterFactory>>, String> {
        let (url, sharded) = match self {
            Fleet::Local => return Ok(None),
            Fleet::Redis { url, sharded } => (url, sharded),
            Fleet::RedisStreams {
                url,
                stream,
                max_len,
            } => {
                let config = RedisStreamsAdapterConfig::default()
                    .stream_name(stream.clone())
                    .max_len(*max_len);
                let factory = RedisStreamsAdapterFactory::connect(url, config)
                    .await
                    .map_err(|e| format!("cannot connect to Redis at {url}: {e}"))?;
                // Serve once every entry written from now on reaches us
                // (the reader retries until Redis answers; it did a moment
                // ago, so this is a round trip, bounded anyway).
                let started = std::time::Duration::from_secs(5);
                if tokio::time::timeout(started, factory.started())
                    .await
                    .is_err()
                {
                    tracing::warn!("the Redis stream reader has not started yet; serving anyway");
                }
                return Ok(Some(Arc::new(factory)));
            }
        };
        let failed =
            |error: iocluster_redis::Error| format!("cannot connect to Redis at {url}: {error}");
        Ok(Some(match sharded {
            None => Arc::new(
                RedisAdapterFactory::connect(url, Default::default())
                    .await
                    .map_err(failed)?,
            ),
            Some(mode) => {
                let config = ShardedRedisAdapterConfig::default().subscription_mode(*mode);
                Arc::new(
                    ShardedRedisAdapterFactory::connect(url, config)
                        .await
                        .map_err(failed)?,
                )
            }
        }))
    }
}
