//! [`ShardedRedisAdapterFactory`]: one publishing and one subscribing
//! connection per server, an adapter per namespace, and the subscription of
//! each namespace's own channels.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use fred::clients::{Client, SubscriberClient};
use fred::interfaces::PubsubInterface;
use iocluster_socketio::adapter::{Adapter, AdapterFactory, LocalNamespace};
use tokio::sync::watch;

use super::rooms::{self, RoomSync};
use super::transport::{Sharded, ShardedCore, ShardedHandle};
use super::{ShardedRedisAdapterConfig, SubscriptionMode};
use crate::adapter::cluster::{ClusterAdapter, ClusterCore};
use crate::adapter::link::{Link, PubSub};
use crate::error::Error;

/// How long a failed subscription of a namespace's own channels waits
/// before it is tried again.
const RETRY: Duration = Duration::from_millis(200);

/// Makes the sharded Redis adapter of every namespace of a server, over
/// one publishing and one subscribing Redis connection (a Redis 7
/// standalone server or a Redis Cluster).
///
/// ```no_run
/// use iocluster_redis::{ShardedRedisAdapterConfig, ShardedRedisAdapterFactory, SubscriptionMode};
/// use iocluster_socketio::{Server, ServerConfig};
///
/// # async fn run() -> Result<(), iocluster_redis::Error> {
/// let config = ShardedRedisAdapterConfig::default().subscription_mode(SubscriptionMode::Dynamic);
/// let factory = ShardedRedisAdapterFactory::connect("redis-cluster://127.0.0.1:7000", config).await?;
/// let io = Server::with_adapter(ServerConfig::default(), factory.clone());
/// factory.subscribed("/").await;
/// io.to("room").emit("hello", "world");
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ShardedRedisAdapterFactory {
    link: Arc<Link<ShardedCore>>,
    config: ShardedRedisAdapterConfig,
    malformed: Arc<AtomicU64>,
}

impl std::fmt::Debug for ShardedRedisAdapterFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedRedisAdapterFactory")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ShardedRedisAdapterFactory {
    /// Connects both clients to `url` (`redis://`, `rediss://`,
    /// `redis-cluster://`, `redis-sentinel://`…) with
    /// [`connect_client`](crate::connect_client)'s settings; they are
    /// closed when the factory and its adapters are gone.
    pub async fn connect(url: &str, config: ShardedRedisAdapterConfig) -> Result<Self, Error> {
        let client = crate::connect_client(url).await?;
        let subscriber = crate::connect_subscriber(url).await?;
        Ok(Self::with_link(
            Link::start(client, subscriber, true, PubSub::Sharded),
            config,
        ))
    }

    /// Uses connected clients: `client` publishes, `subscriber` listens
    /// (and is resubscribed after each reconnection); they stay the
    /// caller's, open after the adapters are gone. Must be called within a
    /// Tokio runtime.
    pub fn new(
        client: Client,
        subscriber: SubscriberClient,
        config: ShardedRedisAdapterConfig,
    ) -> Self {
        Self::with_link(
            Link::start(client, subscriber, false, PubSub::Sharded),
            config,
        )
    }

    fn with_link(link: Link<ShardedCore>, config: ShardedRedisAdapterConfig) -> Self {
        ShardedRedisAdapterFactory {
            link: Arc::new(link),
            config,
            malformed: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Waits until Redis confirmed the subscriptions of namespace `nsp` to
    /// its own channels: from then on, messages of other servers reach it
    /// (room channels are subscribed as rooms are created). False when the
    /// namespace has no adapter of this factory.
    pub async fn subscribed(&self, nsp: &str) -> bool {
        let Some(core) = self.link.registry.find(nsp) else {
            return false;
        };
        let mut subscribed = core.transport.subscribed.subscribe();
        subscribed.wait_for(|done| *done).await.is_ok()
    }

    /// How many messages on this factory's channels could not be read (and
    /// were dropped) so far.
    pub fn malformed_messages(&self) -> u64 {
        self.malformed.load(Ordering::Relaxed)
    }
}

impl AdapterFactory for ShardedRedisAdapterFactory {
    fn create(&self, namespace: LocalNamespace) -> Arc<dyn Adapter> {
        let channel = format!("{}#{}#", self.config.channel_prefix, namespace.name());
        let sharded = Sharded {
            channel,
            publisher: self.link.publisher.clone(),
            config: self.config.clone(),
            subscribed: watch::Sender::new(false),
        };
        let timeout = self.config.requests_timeout;
        let malformed = Arc::clone(&self.malformed);
        let core = Arc::new(ClusterCore::new(
            namespace.clone(),
            timeout,
            malformed,
            sharded,
        ));
        self.link.registry.add(Arc::clone(&core));
        let rooms = (self.config.subscription_mode != SubscriptionMode::Static).then(|| {
            let sync = Arc::new(RoomSync::default());
            let marking = Arc::clone(&sync);
            namespace.on_room_event(move |event| marking.on_room_event(event));
            self.link.runtime.spawn(rooms::run(
                Arc::downgrade(&core),
                core.transport.channel.clone(),
                Arc::clone(&sync),
                self.link.subscriber.clone(),
            ));
            sync
        });
        self.link.runtime.spawn(subscribe(
            Arc::downgrade(&core),
            self.link.subscriber.clone(),
        ));
        let handle = ShardedHandle {
            link: Arc::clone(&self.link),
            rooms,
        };
        Arc::new(ClusterAdapter::new(core, handle))
    }
}

/// Subscribes the namespace channel then the response channel (one
/// `SSUBSCRIBE` each: they may live on different shards), trying again
/// until it works or the adapter is gone, then waits until Redis counts
/// the response channel's subscriber (fred may report an `SSUBSCRIBE`
/// done a moment before Redis ran it).
async fn subscribe(core: std::sync::Weak<ShardedCore>, subscriber: SubscriberClient) {
    let channels = match core.upgrade() {
        Some(core) => [core.transport.channel.clone(), core.response_channel()],
        None => return,
    };
    for channel in channels {
        loop {
            if core.upgrade().is_none_or(|core| core.is_closed()) {
                return;
            }
            match subscriber.ssubscribe(channel.clone()).await {
                Ok(()) => break,
                Err(error) => {
                    tracing::warn!(%error, channel, "redis SSUBSCRIBE failed; will retry");
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }
    let Some(core) = core.upgrade() else { return };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::time::Instant::now() < deadline {
        let sharded = &core.transport;
        if sharded.publisher.numsub(&core.response_channel()).await >= Some(1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    core.transport.subscribed.send_replace(true);
}
