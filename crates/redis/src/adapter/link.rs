//! The process's link to Redis, shared by every namespace's adapter: one
//! publishing client fed by an ordered, bounded queue, and one subscriber
//! client whose messages a single task hands to the namespaces. Used by
//! both adapters: the classic one (`PUBLISH`, `PUBSUB NUMSUB`) and the
//! sharded one (`SPUBLISH`, `PUBSUB SHARDNUMSUB`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use fred::clients::{Client, SubscriberClient};
use fred::interfaces::{ClientLike, ClusterInterface, EventInterface, PubsubInterface};
use fred::types::Value as RedisValue;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

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

/// Publications waiting for Redis, by count; past this (or
/// [`PUBLISH_QUEUE_BYTES`]), new ones are dropped, counted and logged
/// rather than growing memory while Redis is away.
const PUBLISH_QUEUE: usize = 65_536;

/// Publications waiting for Redis, by bytes (those in the pipeline being
/// sent included): what an outage may cost in memory, whatever the size of
/// the messages. Also what is replayed at once when Redis comes back: it
/// must stay well under Redis's default output buffer limit for pub/sub
/// clients (32 MB hard, 8 MB for 60 s), or Redis disconnects the
/// subscribers the replay floods, and more is lost.
const PUBLISH_QUEUE_BYTES: usize = 16 * 1024 * 1024;

/// Publications sent to Redis in one pipeline.
const PUBLISH_BATCH: usize = 256;

/// How often a clustered sharded subscriber checks for moved slots.
const SLOT_CHECK: std::time::Duration = std::time::Duration::from_secs(2);

/// Queues publications; they reach Redis in the order they were queued.
#[derive(Clone)]
pub(crate) struct Publisher {
    queue: mpsc::Sender<(String, Bytes)>,
    /// Bytes of the publications queued or being sent.
    queued_bytes: Arc<AtomicUsize>,
    client: Client,
    pubsub: PubSub,
}

impl Publisher {
    /// Queues `message` for `channel`; never waits. Past the queue's
    /// bounds (Redis away or too slow) the message is dropped and counted.
    pub(crate) fn publish(&self, channel: String, message: impl Into<Bytes>) {
        let message = message.into();
        let size = publication_size(&channel, &message);
        let queued = self.queued_bytes.fetch_add(size, Ordering::Relaxed) + size;
        let refused = if queued > PUBLISH_QUEUE_BYTES {
            Some("byte bound reached")
        } else {
            self.queue
                .try_send((channel, message))
                .err()
                .map(|_| "queue full or closed")
        };
        if let Some(why) = refused {
            self.queued_bytes.fetch_sub(size, Ordering::Relaxed);
            dropped(1, why);
        }
    }

    /// How many clients subscribe to `channel` (`PUBSUB NUMSUB`, or
    /// `PUBSUB SHARDNUMSUB` for sharded pub/sub); none when Redis cannot
    /// tell.
    ///
    /// A Redis Cluster counts the subscribers of each node apart (each
    /// subscriber of a classic channel is connected to one node, and
    /// `PUBLISH` reaches every node; a shard channel lives on the node of
    /// its slot): the count is the sum over the nodes, as Node's adapters
    /// do.
    pub(crate) async fn numsub(&self, channel: &str) -> Option<usize> {
        if !self.client.is_clustered() {
            return numsub_of(&self.client, channel, self.pubsub).await;
        }
        let nodes = self.client.active_connections();
        if nodes.is_empty() {
            return None;
        }
        let mut total = 0;
        for node in nodes {
            total += numsub_of(&self.client.with_cluster_node(node), channel, self.pubsub).await?;
        }
        Some(total)
    }
}

/// `PUBSUB NUMSUB channel` (or `SHARDNUMSUB`) on the node `client` sends
/// commands to.
async fn numsub_of(client: &impl PubsubInterface, channel: &str, pubsub: PubSub) -> Option<usize> {
    let reply: Result<Vec<RedisValue>, _> = match pubsub {
        PubSub::Classic => client.pubsub_numsub(channel).await,
        PubSub::Sharded => client.pubsub_shardnumsub(channel).await,
    };
    let reply = match reply {
        Ok(reply) => reply,
        Err(error) => {
            tracing::debug!(%error, "PUBSUB NUMSUB failed");
            return None;
        }
    };
    reply
        .get(1)
        .and_then(RedisValue::as_u64)
        .map(|n| n as usize)
}

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
    tasks: Mutex<Vec<JoinHandle<()>>>,
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
        let (queue, receiver) = mpsc::channel(PUBLISH_QUEUE);
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let registry = Arc::new(Registry::default());
        let mut tasks = vec![
            tokio::spawn(publish_loop(
                client.clone(),
                receiver,
                Arc::clone(&queued_bytes),
                pubsub,
            )),
            tokio::spawn(listen_loop(subscriber.message_rx(), Arc::clone(&registry))),
            tokio::spawn(resubscribe_on_reconnect(subscriber.clone())),
            tokio::spawn(count_reconnects(client.clone())),
        ];
        if pubsub == PubSub::Sharded && subscriber.is_clustered() {
            tasks.push(tokio::spawn(follow_slot_moves(subscriber.clone())));
        }
        Link {
            publisher: Publisher {
                queue,
                queued_bytes,
                client,
                pubsub,
            },
            subscriber,
            registry,
            runtime: tokio::runtime::Handle::current(),
            tasks: Mutex::new(tasks),
            owns_clients,
        }
    }
}

impl<T> Drop for Link<T> {
    fn drop(&mut self) {
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            task.abort();
        }
        if self.owns_clients {
            // Without QUIT, fred's connection tasks would reconnect forever.
            let client = self.publisher.client.clone();
            let subscriber = self.subscriber.clone();
            self.runtime.spawn(async move {
                let _ = client.quit().await;
                let _ = subscriber.quit().await;
            });
        }
    }
}

/// The bytes a queued publication holds.
fn publication_size(channel: &str, message: &Bytes) -> usize {
    channel.len() + message.len()
}

/// Counts and logs dropped publications: the first, then every
/// thousandth (an outage drops many in a row).
fn dropped(count: u64, why: &str) {
    let before = crate::stats::DROPPED.get();
    crate::stats::DROPPED.add(count);
    if before == 0 || before / 1000 != (before + count) / 1000 {
        tracing::warn!(why, dropped = before + count, "redis publications dropped");
    }
}

/// Sends queued publications in pipelines, one pipeline at a time, so they
/// reach Redis in order. A pipeline that fails (Redis away longer than the
/// command timeout) is dropped and counted; the next one is tried as soon
/// as it is queued.
async fn publish_loop(
    client: Client,
    mut receiver: mpsc::Receiver<(String, Bytes)>,
    queued_bytes: Arc<AtomicUsize>,
    pubsub: PubSub,
) {
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    while receiver.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
        let count = batch.len() as u64;
        let bytes: usize = batch
            .iter()
            .map(|(channel, message)| publication_size(channel, message))
            .sum();
        let pipeline = client.pipeline();
        for (channel, message) in batch.drain(..) {
            let queued: Result<(), _> = match pubsub {
                PubSub::Classic => pipeline.publish(channel, message).await,
                PubSub::Sharded => pipeline.spublish(channel, message).await,
            };
            if let Err(error) = queued {
                tracing::warn!(%error, "redis publication not queued");
            }
        }
        match pipeline.all::<Vec<RedisValue>>().await {
            Ok(_) => crate::stats::PUBLISHED.add(count),
            Err(error) => {
                tracing::debug!(%error, "redis publications failed");
                dropped(count, "publication failed");
            }
        }
        queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
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
