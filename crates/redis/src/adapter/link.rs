//! The process's link to Redis, shared by every namespace's adapter: one
//! publishing client fed by an ordered, bounded queue, and one subscriber
//! client whose messages a single task hands to the namespaces. Used by
//! both adapters: the classic one (`PUBLISH`, `PUBSUB NUMSUB`) and the
//! sharded one (`SPUBLISH`, `PUBSUB SHARDNUMSUB`).

use std::sync::{Arc, RwLock};

use bytes::Bytes;
use fred::clients::{Client, SubscriberClient};
use fred::interfaces::{ClientLike, ClusterInterface, EventInterface, PubsubInterface};
use fred::types::Value as RedisValue;
use tokio::sync::broadcast;

use super::background::Tasks;
use super::publisher::Publisher;

/// Which pub/sub the link speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PubSub {
    /// `PUBLISH`, `PUBSUB NUMSUB`.
    Classic,
    /// Redis 7 sharded pub/sub: `SPUBLISH`, `PUBSUB SHARDNUMSUB`.
    Sharded,
}

/// A namespace's adapter as the link sees it: a name, and a handler for
/// the pub/sub messages of the process.
pub(crate) trait Listener: Send + Sync + 'static {
    /// The namespace name.
    fn nsp(&self) -> &str;
    /// A pub/sub message on any channel of this process.
    fn on_message(&self, channel: &str, bytes: &Bytes);
}

/// How often a clustered sharded subscriber checks for moved slots.
const SLOT_CHECK: std::time::Duration = std::time::Duration::from_secs(2);

/// The adapters of this process, by namespace.
pub(crate) struct Registry<T> {
    cores: RwLock<Vec<Arc<T>>>,
}

impl<T> Default for Registry<T> {
    fn default() -> Self {
        Registry {
            cores: RwLock::new(Vec::new()),
        }
    }
}

impl<T: Listener> Registry<T> {
    pub(crate) fn add(&self, core: Arc<T>) {
        self.cores
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(core);
    }

    pub(crate) fn remove(&self, core: &Arc<T>) {
        self.cores
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|c| !Arc::ptr_eq(c, core));
    }

    pub(crate) fn find(&self, nsp: &str) -> Option<Arc<T>> {
        self.cores
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|c| c.nsp() == nsp)
            .cloned()
    }

    fn snapshot(&self) -> Vec<Arc<T>> {
        self.cores.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The Redis side of a process.
pub(crate) struct Link<T> {
    pub(crate) publisher: Publisher,
    pub(crate) subscriber: SubscriberClient,
    pub(crate) registry: Arc<Registry<T>>,
    pub(crate) runtime: tokio::runtime::Handle,
    /// Aborted when the link is dropped.
    _tasks: Tasks,
    /// Whether the clients were made for this link (and are closed with it).
    owns_clients: bool,
}

impl<T: Listener> Link<T> {
    /// Starts the publishing, listening and resubscribing tasks on the
    /// current runtime. With `owns_clients`, the clients are closed
    /// (`QUIT`) when the link is dropped.
    pub(crate) fn start(
        client: Client,
        subscriber: SubscriberClient,
        owns_clients: bool,
        pubsub: PubSub,
    ) -> Link<T> {
        let (publisher, publishing) = Publisher::start(client.clone(), pubsub);
        let registry = Arc::new(Registry::default());
        let mut tasks = vec![
            publishing,
            tokio::spawn(listen_loop(subscriber.message_rx(), Arc::clone(&registry))),
            tokio::spawn(resubscribe_on_reconnect(subscriber.clone())),
            tokio::spawn(count_reconnects(client.clone())),
        ];
        if pubsub == PubSub::Sharded && subscriber.is_clustered() {
            tasks.push(tokio::spawn(follow_slot_moves(subscriber.clone())));
        }
        Link {
            publisher,
            subscriber,
            registry,
            runtime: tokio::runtime::Handle::current(),
            _tasks: Tasks::new(tasks),
            owns_clients,
        }
    }
}

impl<T> Drop for Link<T> {
    fn drop(&mut self) {
        if self.owns_clients {
            let client = self.publisher.client().clone();
            super::background::quit(&self.runtime, client, self.subscriber.clone());
        }
    }
}

/// Counts the publishing client's reconnections (and logs each: one line
/// per Redis reconnect).
async fn count_reconnects(client: Client) {
    let mut reconnections = client.reconnect_rx();
    loop {
        match reconnections.recv().await {
            Ok(server) => {
                crate::stats::RECONNECTS.add(1);
                tracing::info!(%server, "reconnected to redis");
            }
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                crate::stats::RECONNECTS.add(missed);
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Resubscribes the shard channels when their slots moved.
///
/// When a slot moves to another node, Redis ends the subscriptions to its
/// shard channels on the old node (a `sunsubscribe` push, which fred drops)
/// and nothing tells the subscriber to subscribe again on the new node;
/// fred resubscribes after reconnections only. So the cluster's slot map
/// is read every [`SLOT_CHECK`], and every subscription made again (on the
/// node that now owns it) when the map changed. Node's `redis` client
/// resubscribes on the push itself: here, messages published in between
/// are lost.
async fn follow_slot_moves(subscriber: SubscriberClient) {
    let slots = |subscriber: &SubscriberClient| {
        subscriber
            .cached_cluster_state()
            .map(|state| state.slots().to_vec())
    };
    let mut ticks = tokio::time::interval(SLOT_CHECK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    // The map as of the last resubscription (fred may update its own copy
    // in between, on a MOVED reply).
    let mut known = slots(&subscriber);
    loop {
        ticks.tick().await;
        if let Err(error) = subscriber.sync_cluster().await {
            tracing::debug!(%error, "reading the cluster's slots failed");
            continue;
        }
        let now = slots(&subscriber);
        if now == known {
            continue;
        }
        known = now;
        tracing::info!("redis cluster slots moved: resubscribing");
        resubscribe(&subscriber).await;
    }
}

/// Subscribes again to everything `subscriber` tracks after each
/// reconnection. Not fred's `manage_subscriptions`: its `resubscribe_all`
/// may send a `SUBSCRIBE` without channels when there are none (the
/// sharded adapter has none), which Redis refuses, and then gives up
/// before the shard channels.
async fn resubscribe_on_reconnect(subscriber: SubscriberClient) {
    let mut reconnections = subscriber.reconnect_rx();
    loop {
        match reconnections.recv().await {
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => resubscribe(&subscriber).await,
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Subscribes `subscriber` again to its tracked channels, patterns and
/// shard channels (one `SSUBSCRIBE` each: a cluster takes one slot per
/// command); failures are logged.
async fn resubscribe(subscriber: &SubscriberClient) {
    let channels: Vec<_> = subscriber.tracked_channels().into_iter().collect();
    if !channels.is_empty()
        && let Err(error) = subscriber.subscribe(channels).await
    {
        tracing::warn!(%error, "redis resubscription failed");
    }
    let patterns: Vec<_> = subscriber.tracked_patterns().into_iter().collect();
    if !patterns.is_empty()
        && let Err(error) = subscriber.psubscribe(patterns).await
    {
        tracing::warn!(%error, "redis resubscription failed");
    }
    for channel in subscriber.tracked_shard_channels() {
        if let Err(error) = subscriber.ssubscribe(channel).await {
            tracing::warn!(%error, "redis shard resubscription failed");
        }
    }
}

/// Hands every pub/sub message to the namespaces whose channels it is on.
async fn listen_loop<T: Listener>(
    mut messages: broadcast::Receiver<fred::types::Message>,
    registry: Arc<Registry<T>>,
) {
    loop {
        let message = match messages.recv().await {
            Ok(message) => message,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "redis messages dropped: the adapter fell behind");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let bytes = match message.value {
            RedisValue::Bytes(bytes) => bytes,
            RedisValue::String(s) => s.into_inner(),
            _ => continue,
        };
        for core in registry.snapshot() {
            core.on_message(&message.channel, &bytes);
        }
    }
}
