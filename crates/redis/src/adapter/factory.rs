//! The factory of the classic Redis adapter: one publishing and one
//! subscribing connection per server, shared by every namespace, and the
//! subscriptions of each namespace's channels.

use std::sync::Arc;
use std::time::Duration;

use fred::clients::{Client, SubscriberClient};
use fred::interfaces::PubsubInterface;
use iocluster_socketio::adapter::{Adapter, AdapterFactory, LocalNamespace};

use super::RedisAdapter;
use super::config::RedisAdapterConfig;
use super::core::AdapterCore;
use super::link::{Link, PubSub};
use crate::error::Error;

/// Makes the [`RedisAdapter`] of every namespace of a server, over one
/// publishing and one subscribing Redis connection.
///
/// ```no_run
/// use iocluster_redis::{RedisAdapterConfig, RedisAdapterFactory};
/// use iocluster_socketio::{Server, ServerConfig};
///
/// # async fn run() -> Result<(), iocluster_redis::Error> {
/// let factory = RedisAdapterFactory::connect("redis://127.0.0.1:6379", RedisAdapterConfig::default()).await?;
/// let io = Server::with_adapter(ServerConfig::default(), factory.clone());
/// factory.subscribed("/").await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisAdapterFactory {
    link: Arc<Link<AdapterCore>>,
    config: RedisAdapterConfig,
}

impl std::fmt::Debug for RedisAdapterFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisAdapterFactory")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RedisAdapterFactory {
    /// Connects both clients to `url` (`redis://host:port`) with
    /// [`connect_client`](crate::connect_client)'s settings; they are
    /// closed when the factory and its adapters are gone.
    pub async fn connect(url: &str, config: RedisAdapterConfig) -> Result<Self, Error> {
        let client = crate::connect_client(url).await?;
        let subscriber = crate::connect_subscriber(url).await?;
        Ok(RedisAdapterFactory {
            link: Arc::new(Link::start(client, subscriber, true, PubSub::Classic)),
            config,
        })
    }

    /// Uses connected clients: `client` publishes, `subscriber` listens
    /// (and is resubscribed after each reconnection); they stay the
    /// caller's, open after the adapters are gone. Must be called within a
    /// Tokio runtime.
    pub fn new(client: Client, subscriber: SubscriberClient, config: RedisAdapterConfig) -> Self {
        RedisAdapterFactory {
            link: Arc::new(Link::start(client, subscriber, false, PubSub::Classic)),
            config,
        }
    }

    /// Waits until Redis confirmed the subscriptions of namespace `nsp`:
    /// from then on, messages of other servers reach it. False when the
    /// namespace has no adapter of this factory.
    pub async fn subscribed(&self, nsp: &str) -> bool {
        let Some(core) = self.link.registry.find(nsp) else {
            return false;
        };
        let mut subscribed = core.subscribed.subscribe();
        subscribed.wait_for(|done| *done).await.is_ok()
    }
}

impl AdapterFactory for RedisAdapterFactory {
    fn create(&self, namespace: LocalNamespace) -> Arc<dyn Adapter> {
        let core = Arc::new(AdapterCore::new(
            namespace,
            self.link.publisher.clone(),
            self.config.clone(),
        ));
        self.link.registry.add(Arc::clone(&core));
        let subscriber = self.link.subscriber.clone();
        let subscribing = Arc::clone(&core);
        self.link.runtime.spawn(async move {
            let (pattern, channels) = subscribing.subscriptions();
            let result = async {
                subscriber.psubscribe(pattern).await?;
                subscriber.subscribe(channels).await
            }
            .await;
            match result {
                Ok(()) => {
                    confirm_subscribed(&subscribing).await;
                    subscribing.subscribed.send_replace(true);
                }
                Err(error) => {
                    tracing::warn!(%error, nsp = subscribing.nsp(), "redis subscription failed")
                }
            }
        });
        Arc::new(RedisAdapter {
            core,
            link: Arc::clone(&self.link),
        })
    }
}

/// How long [`confirm_subscribed`] asks Redis before it trusts fred.
const CONFIRM_WITHIN: Duration = Duration::from_secs(5);

/// Waits until Redis counts a subscriber on this adapter's own response
/// channel (`…{uid}#`, subscribed last, by nobody else). fred can report a
/// `SUBSCRIBE` done before Redis has run it (seen on a busy machine, about
/// once in a hundred fresh connections); a server must not count itself
/// subscribed, nor be counted by others, before it is.
async fn confirm_subscribed(core: &AdapterCore) {
    let deadline = tokio::time::Instant::now() + CONFIRM_WITHIN;
    while tokio::time::Instant::now() < deadline {
        if core.publisher.numsub(&core.specific_response).await >= Some(1) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tracing::warn!(nsp = core.nsp(), "redis never confirmed the subscriptions");
}
