//! The process's link to Redis, shared by every namespace's adapter: one
//! publishing client fed by an ordered, bounded queue, and one subscriber
//! client whose messages a single task hands to the namespaces.

use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use fred::clients::{Client, SubscriberClient};
use fred::interfaces::{ClientLike, EventInterface, PubsubInterface};
use fred::types::Value as RedisValue;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use super::core::AdapterCore;

/// Publications waiting for Redis; past this, new ones are dropped (and
/// logged) rather than growing memory while Redis is away.
const PUBLISH_QUEUE: usize = 65_536;

/// Publications sent to Redis in one pipeline.
const PUBLISH_BATCH: usize = 256;

/// Queues publications; they reach Redis in the order they were queued.
#[derive(Clone)]
pub(crate) struct Publisher {
    queue: mpsc::Sender<(String, Bytes)>,
    client: Client,
}

impl Publisher {
    /// Queues `message` for `channel`; never waits.
    pub(crate) fn publish(&self, channel: String, message: impl Into<Bytes>) {
        if let Err(error) = self.queue.try_send((channel, message.into())) {
            tracing::warn!(%error, "redis publication dropped: the queue is full or closed");
        }
    }

    /// How many clients subscribe to `channel` (`PUBSUB NUMSUB`); none when
    /// Redis cannot tell.
    ///
    /// A Redis Cluster counts the subscribers of each node apart (each
    /// subscriber is connected to one node, and `PUBLISH` reaches every
    /// node): the count is the sum over the nodes, as Node's adapter does.
    pub(crate) async fn numsub(&self, channel: &str) -> Option<usize> {
        if !self.client.is_clustered() {
            return numsub_of(&self.client, channel).await;
        }
        let nodes = self.client.active_connections();
        if nodes.is_empty() {
            return None;
        }
        let mut total = 0;
        for node in nodes {
            total += numsub_of(&self.client.with_cluster_node(node), channel).await?;
        }
        Some(total)
    }
}

/// `PUBSUB NUMSUB channel` on the node `client` sends commands to.
async fn numsub_of(client: &impl PubsubInterface, channel: &str) -> Option<usize> {
    let reply: Vec<RedisValue> = match client.pubsub_numsub(channel).await {
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
#[derive(Default)]
pub(crate) struct Registry {
    cores: RwLock<Vec<Arc<AdapterCore>>>,
}

impl Registry {
    pub(crate) fn add(&self, core: Arc<AdapterCore>) {
        self.cores
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(core);
    }

    pub(crate) fn remove(&self, core: &Arc<AdapterCore>) {
        self.cores
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|c| !Arc::ptr_eq(c, core));
    }

    pub(crate) fn find(&self, nsp: &str) -> Option<Arc<AdapterCore>> {
        self.cores
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|c| c.nsp() == nsp)
            .cloned()
    }

    fn snapshot(&self) -> Vec<Arc<AdapterCore>> {
        self.cores.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The Redis side of a process.
pub(crate) struct Link {
    pub(crate) publisher: Publisher,
    pub(crate) subscriber: SubscriberClient,
    pub(crate) registry: Arc<Registry>,
    pub(crate) runtime: tokio::runtime::Handle,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Whether the clients were made for this link (and are closed with it).
    owns_clients: bool,
}

impl Link {
    /// Starts the publishing, listening and resubscribing tasks on the
    /// current runtime. With `owns_clients`, the clients are closed
    /// (`QUIT`) when the link is dropped.
    pub(crate) fn start(client: Client, subscriber: SubscriberClient, owns_clients: bool) -> Link {
        let (queue, receiver) = mpsc::channel(PUBLISH_QUEUE);
        let registry = Arc::new(Registry::default());
        let tasks = vec![
            tokio::spawn(publish_loop(client.clone(), receiver)),
            tokio::spawn(listen_loop(subscriber.message_rx(), Arc::clone(&registry))),
            subscriber.manage_subscriptions(),
        ];
        Link {
            publisher: Publisher { queue, client },
            subscriber,
            registry,
            runtime: tokio::runtime::Handle::current(),
            tasks: Mutex::new(tasks),
            owns_clients,
        }
    }
}

impl Drop for Link {
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

/// Sends queued publications in pipelines, one pipeline at a time, so they
/// reach Redis in order.
async fn publish_loop(client: Client, mut receiver: mpsc::Receiver<(String, Bytes)>) {
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    while receiver.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
        let pipeline = client.pipeline();
        for (channel, message) in batch.drain(..) {
            let queued: Result<(), _> = pipeline.publish(channel, message).await;
            if let Err(error) = queued {
                tracing::warn!(%error, "redis publication not queued");
            }
        }
        if let Err(error) = pipeline.all::<Vec<RedisValue>>().await {
            tracing::warn!(%error, "redis publications failed");
        }
    }
}

/// Hands every pub/sub message to the namespaces whose channels it is on.
async fn listen_loop(
    mut messages: broadcast::Receiver<fred::types::Message>,
    registry: Arc<Registry>,
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
