//! [`RedisStreamsAdapterFactory`]: per process one writing connection, one
//! reading connection (`XREAD BLOCK` holds it), and an adapter per
//! namespace.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use fred::clients::Client;
use iocluster_socketio::adapter::{Adapter, AdapterFactory, LocalNamespace};

use super::RedisStreamsAdapterConfig;
use super::nodes::Nodes;
use super::reader::{self, Namespaces, ReaderHandle};
use super::session::Connected;
use super::transport::{Streams, heartbeats, refresh_sessions};
use super::writer::Writer;
use crate::adapter::background::Tasks;
use crate::adapter::cluster::wire::MessageType;
use crate::adapter::cluster::{ClusterAdapter, ClusterCore};
use crate::error::Error;

/// Makes the Redis streams adapter of every namespace of a server, over
/// one writing and one reading Redis connection.
///
/// ```no_run
/// use iocluster_redis::{RedisStreamsAdapterConfig, RedisStreamsAdapterFactory};
/// use iocluster_socketio::{Server, ServerConfig};
///
/// # async fn run() -> Result<(), iocluster_redis::Error> {
/// let factory = RedisStreamsAdapterFactory::connect("redis://127.0.0.1:6379", RedisStreamsAdapterConfig::default()).await?;
/// factory.started().await;
/// let io = Server::with_adapter(ServerConfig::default(), factory);
/// io.emit("hello", "every client of every server");
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStreamsAdapterFactory {
    inner: Arc<Inner>,
}

struct Inner {
    config: RedisStreamsAdapterConfig,
    client: Client,
    reader_client: Client,
    writer: Writer,
    reader: Arc<ReaderHandle>,
    namespaces: Arc<Namespaces>,
    malformed: Arc<AtomicU64>,
    runtime: tokio::runtime::Handle,
    tasks: Tasks,
    owns_clients: bool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if self.owns_clients {
            let (client, reader) = (self.client.clone(), self.reader_client.clone());
            crate::adapter::background::quit(&self.runtime, client, reader);
        }
    }
}

impl std::fmt::Debug for RedisStreamsAdapterFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStreamsAdapterFactory")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl RedisStreamsAdapterFactory {
    /// Connects both clients to `url` (`redis://`, `rediss://`,
    /// `redis-sentinel://`…) with [`connect_client`](crate::connect_client)'s
    /// settings; they are closed when the factory and its adapters are
    /// gone.
    pub async fn connect(url: &str, config: RedisStreamsAdapterConfig) -> Result<Self, Error> {
        let client = crate::connect_client(url).await?;
        let reader = crate::connect_client(url).await?;
        Ok(Self::start(client, reader, config, true))
    }

    /// Uses connected clients: `client` writes and reads sessions, `reader`
    /// reads the stream and must serve nothing else (`XREAD BLOCK` holds
    /// it). They stay the caller's, open after the adapters are gone. Must
    /// be called within a Tokio runtime.
    pub fn new(client: Client, reader: Client, config: RedisStreamsAdapterConfig) -> Self {
        Self::start(client, reader, config, false)
    }

    fn start(
        client: Client,
        reader_client: Client,
        config: RedisStreamsAdapterConfig,
        owns_clients: bool,
    ) -> Self {
        let namespaces = Arc::new(Namespaces::default());
        let malformed = Arc::new(AtomicU64::new(0));
        let (writer, writing) =
            Writer::start(client.clone(), config.stream_name.clone(), config.max_len);
        let (reader, reading) = reader::start(
            reader_client.clone(),
            config.stream_name.clone(),
            config.read_count,
            config.block_time,
            Arc::clone(&namespaces),
            Arc::clone(&malformed),
        );
        RedisStreamsAdapterFactory {
            inner: Arc::new(Inner {
                config,
                client,
                reader_client,
                writer,
                reader: Arc::new(reader),
                namespaces,
                malformed,
                runtime: tokio::runtime::Handle::current(),
                tasks: Tasks::new(vec![writing, reading]),
                owns_clients,
            }),
        }
    }

    /// Waits until the reader knows where the stream ends: from then on,
    /// every entry written reaches this server's adapters.
    pub async fn started(&self) -> bool {
        self.inner.reader.started().await
    }

    /// How many stream entries could not be read (and were skipped) so
    /// far.
    pub fn malformed_entries(&self) -> u64 {
        self.inner.malformed.load(Ordering::Relaxed)
    }
}

impl AdapterFactory for RedisStreamsAdapterFactory {
    fn create(&self, namespace: LocalNamespace) -> Arc<dyn Adapter> {
        let inner = &self.inner;
        let recovery = namespace.recovery();
        let streams = Streams {
            writer: inner.writer.clone(),
            client: inner.client.clone(),
            reader: Arc::clone(&inner.reader),
            config: inner.config.clone(),
            nodes: Nodes::new(inner.config.heartbeat_timeout),
            recovery: recovery.clone(),
            connected: Connected::default(),
            last_write: AtomicU64::new(0),
            epoch: tokio::time::Instant::now(),
        };
        let timeout = inner.config.requests_timeout;
        let malformed = Arc::clone(&inner.malformed);
        let core = Arc::new(ClusterCore::new(namespace, timeout, malformed, streams));
        inner.namespaces.add(Arc::clone(&core));
        // Node's `init`: tell the others we are here; they answer with a
        // heartbeat, and count us.
        core.send(MessageType::InitialHeartbeat, None, &[]);
        let tasks = &inner.tasks;
        tasks.push(inner.runtime.spawn(heartbeats(
            Arc::downgrade(&core),
            inner.config.heartbeat_interval,
        )));
        if let Some(recovery) = recovery
            && inner.config.persist_connected_sessions
        {
            tasks.push(inner.runtime.spawn(refresh_sessions(
                Arc::downgrade(&core),
                recovery.max_disconnection_duration,
            )));
        }
        Arc::new(ClusterAdapter::new(core, Arc::clone(&inner.namespaces)))
    }
}
