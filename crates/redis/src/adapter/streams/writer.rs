//! Writing to Redis: `XADD`s of messages and the `SET`/`DEL` of sessions,
//! in one ordered queue per process, bounded by count and by bytes,
//! emptied by one task in pipelines (as the pub/sub adapters' publisher).
//! Order matters: a session written when its socket connected must not
//! overwrite the one written when it disconnected.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use fred::clients::Client;
use fred::interfaces::ClientLike;
use fred::types::{ClusterHash, CustomCommand, Value as RedisValue};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Commands waiting for Redis, by count; past this (or
/// [`QUEUE_BYTES`]) new ones are dropped, counted and logged.
const QUEUE: usize = 65_536;

/// Commands waiting for Redis, by bytes (those being sent included).
const QUEUE_BYTES: usize = 16 * 1024 * 1024;

/// Commands sent in one pipeline.
const BATCH: usize = 256;

/// A write.
#[derive(Debug)]
pub(crate) enum Command {
    /// `XADD stream MAXLEN ~ max_len * field value …`.
    Append(Vec<(&'static str, Bytes)>),
    /// `SET key value PX ms`.
    Set {
        key: String,
        value: String,
        ttl: Duration,
    },
    /// `DEL key`.
    Del(String),
}

impl Command {
    fn size(&self) -> usize {
        match self {
            Command::Append(fields) => fields.iter().map(|(k, v)| k.len() + v.len()).sum(),
            Command::Set { key, value, .. } => key.len() + value.len(),
            Command::Del(key) => key.len(),
        }
    }
}

/// Queues writes; they reach Redis in the order they were queued.
#[derive(Clone)]
pub(crate) struct Writer {
    queue: mpsc::Sender<Command>,
    queued_bytes: Arc<AtomicUsize>,
}

impl Writer {
    /// A writer on `client` for `stream`, and the task that empties its
    /// queue.
    pub(crate) fn start(client: Client, stream: String, max_len: u64) -> (Writer, JoinHandle<()>) {
        let (queue, receiver) = mpsc::channel(QUEUE);
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(write_loop(
            client,
            stream,
            max_len,
            receiver,
            Arc::clone(&queued_bytes),
        ));
        (
            Writer {
                queue,
                queued_bytes,
            },
            task,
        )
    }

    /// Queues `command`; never waits. Past the queue's bounds (Redis away
    /// or too slow) it is dropped and counted.
    pub(crate) fn send(&self, command: Command) {
        let size = command.size();
        let queued = self.queued_bytes.fetch_add(size, Ordering::Relaxed) + size;
        let refused = if queued > QUEUE_BYTES {
            Some("byte bound reached")
        } else {
            self.queue
                .try_send(command)
                .err()
                .map(|_| "queue full or closed")
        };
        if let Some(why) = refused {
            self.queued_bytes.fetch_sub(size, Ordering::Relaxed);
            dropped(1, why);
        }
    }
}

/// Counts and logs dropped writes: the first, then every thousandth.
fn dropped(count: u64, why: &str) {
    let before = crate::stats::DROPPED.get();
    crate::stats::DROPPED.add(count);
    if before == 0 || before / 1000 != (before + count) / 1000 {
        tracing::warn!(why, dropped = before + count, "redis stream writes dropped");
    }
}

/// `(command, args)` of a write.
fn command_of(command: Command, stream: &str, max_len: &str) -> (CustomCommand, Vec<RedisValue>) {
    let text = |s: &str| RedisValue::String(s.into());
    match command {
        Command::Append(fields) => {
            let mut args = Vec::with_capacity(5 + fields.len() * 2);
            args.extend([
                text(stream),
                text("MAXLEN"),
                text("~"),
                text(max_len),
                text("*"),
            ]);
            for (name, value) in fields {
                args.push(text(name));
                args.push(RedisValue::Bytes(value));
            }
            (
                CustomCommand::new_static("XADD", ClusterHash::Offset(0), false),
                args,
            )
        }
        Command::Set { key, value, ttl } => {
            let ms = ttl.as_millis().max(1).to_string();
            let args = vec![text(&key), text(&value), text("PX"), text(&ms)];
            (
                CustomCommand::new_static("SET", ClusterHash::Offset(0), false),
                args,
            )
        }
        Command::Del(key) => (
            CustomCommand::new_static("DEL", ClusterHash::Offset(0), false),
            vec![text(&key)],
        ),
    }
}

/// Sends queued writes in pipelines, one pipeline at a time, so they reach
/// Redis in order. A pipeline that fails (Redis away longer than the
/// command timeout) is dropped and counted.
async fn write_loop(
    client: Client,
    stream: String,
    max_len: u64,
    mut receiver: mpsc::Receiver<Command>,
    queued_bytes: Arc<AtomicUsize>,
) {
    let max_len = max_len.to_string();
    let mut batch = Vec::with_capacity(BATCH);
    while receiver.recv_many(&mut batch, BATCH).await > 0 {
        let count = batch.len() as u64;
        let bytes: usize = batch.iter().map(Command::size).sum();
        let pipeline = client.pipeline();
        for command in batch.drain(..) {
            let (command, args) = command_of(command, &stream, &max_len);
            let queued: Result<(), _> = pipeline.custom(command, args).await;
            if let Err(error) = queued {
                tracing::warn!(%error, "redis stream write not queued");
            }
        }
        match pipeline
            .try_all::<RedisValue>()
            .await
            .into_iter()
            .find_map(Result::err)
        {
            None => crate::stats::PUBLISHED.add(count),
            Some(error) => {
                tracing::debug!(%error, "redis stream writes failed");
                dropped(count, "write failed");
            }
        }
        queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
    }
}
