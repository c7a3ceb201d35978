//! Publishing to Redis: one ordered queue per process, bounded by count
//! and by bytes, emptied by one task in pipelines.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use fred::clients::Client;
use fred::interfaces::{ClientLike, PubsubInterface};
use fred::types::Value as RedisValue;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::link::PubSub;

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
    /// The client publications go through.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// A publisher on `client`, and the task that empties its queue.
    pub(crate) fn start(client: Client, pubsub: PubSub) -> (Publisher, JoinHandle<()>) {
        let (queue, receiver) = mpsc::channel(PUBLISH_QUEUE);
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(publish_loop(
            client.clone(),
            receiver,
            Arc::clone(&queued_bytes),
            pubsub,
        ));
        let publisher = Publisher {
            queue,
            queued_bytes,
            client,
            pubsub,
        };
        (publisher, task)
    }

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
