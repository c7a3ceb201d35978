//! The process's one reader of the stream: `XREAD BLOCK` on a connection of
//! its own, each entry handed to its namespace's adapter in stream order.
//!
//! The reader's position (the last entry it handed over) and a gate make
//! recovery exact: a session restored here gets the entries after its
//! offset up to the reader's position as missed packets, and the reader is
//! paused (the gate held) until the restored socket is in its namespace, so
//! every later entry reaches it live — none twice, none lost.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use fred::clients::Client;
use fred::interfaces::ClientLike;
use fred::types::config::Options;
use fred::types::{ClusterHash, CustomCommand, Value as RedisValue};
use tokio::sync::{OwnedRwLockReadGuard, watch};

use super::entry::{self, RawEntry};
use super::id::StreamId;
use super::transport::StreamsCore;

/// How long a failed read waits before the next.
const RETRY: Duration = Duration::from_millis(200);

/// The adapters of this process, by namespace.
#[derive(Default)]
pub(crate) struct Namespaces(RwLock<HashMap<String, Arc<StreamsCore>>>);

impl Namespaces {
    pub(crate) fn add(&self, core: Arc<StreamsCore>) {
        self.0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(core.nsp.clone(), core);
    }

    pub(crate) fn remove(&self, core: &Arc<StreamsCore>) {
        let mut map = self.0.write().unwrap_or_else(|p| p.into_inner());
        if map.get(&core.nsp).is_some_and(|c| Arc::ptr_eq(c, core)) {
            map.remove(&core.nsp);
        }
    }

    pub(crate) fn find(&self, nsp: &str) -> Option<Arc<StreamsCore>> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(nsp)
            .cloned()
    }
}

/// What adapters know of the reader: where it is, and its gate.
pub(crate) struct ReaderHandle {
    position: watch::Receiver<Option<StreamId>>,
    gate: Arc<tokio::sync::RwLock<()>>,
}

impl ReaderHandle {
    /// Waits (up to `limit`) until the reader has handed over entry `id`
    /// or a later one; whether it has.
    pub(crate) async fn reached(&self, id: StreamId, limit: Duration) -> bool {
        let mut position = self.position.clone();
        let reached = position.wait_for(|p| p.is_some_and(|p| p >= id));
        matches!(tokio::time::timeout(limit, reached).await, Ok(Ok(_)))
    }

    /// Waits until the reader knows where it starts.
    pub(crate) async fn started(&self) -> bool {
        let mut position = self.position.clone();
        position.wait_for(Option::is_some).await.is_ok()
    }

    /// Pauses the reader (between two batches) until the guard is dropped;
    /// with the last entry it handed over.
    pub(crate) async fn pause(&self) -> (OwnedRwLockReadGuard<()>, Option<StreamId>) {
        let guard = Arc::clone(&self.gate).read_owned().await;
        let position = *self.position.borrow();
        (guard, position)
    }
}

/// Starts the reader on `client` (a connection no one else uses: `XREAD
/// BLOCK` holds it).
pub(crate) fn start(
    client: Client,
    stream: String,
    read_count: u64,
    block_time: Duration,
    namespaces: Arc<Namespaces>,
    malformed: Arc<AtomicU64>,
) -> (ReaderHandle, tokio::task::JoinHandle<()>) {
    let (position_tx, position) = watch::channel(None);
    let gate = Arc::new(tokio::sync::RwLock::new(()));
    let task = tokio::spawn(read_loop(
        Loop {
            client,
            stream,
            read_count,
            block_time,
            namespaces,
            malformed,
            gate: Arc::clone(&gate),
        },
        position_tx,
    ));
    (ReaderHandle { position, gate }, task)
}

struct Loop {
    client: Client,
    stream: String,
    read_count: u64,
    block_time: Duration,
    namespaces: Arc<Namespaces>,
    malformed: Arc<AtomicU64>,
    gate: Arc<tokio::sync::RwLock<()>>,
}

impl Loop {
    /// The last entry of the stream now (`0-0` when it is empty): where
    /// reading starts (Node starts at `$`, which loses what is written
    /// between its start and its first read).
    async fn last_entry(&self) -> Result<StreamId, fred::error::Error> {
        let command = CustomCommand::new_static("XREVRANGE", ClusterHash::Offset(0), false);
        let args = vec![
            self.stream.clone(),
            "+".into(),
            "-".into(),
            "COUNT".into(),
            "1".into(),
        ];
        let reply: RedisValue = self.client.custom(command, args).await?;
        let (entries, _) = entry::range_entries(reply);
        Ok(entries.first().map(|e| e.id).unwrap_or_default())
    }

    /// One `XREAD` after `after`.
    async fn read(&self, after: StreamId) -> Result<RedisValue, fred::error::Error> {
        let command = CustomCommand::new_static("XREAD", ClusterHash::Offset(5), true);
        let args = vec![
            "COUNT".to_owned(),
            self.read_count.to_string(),
            "BLOCK".to_owned(),
            self.block_time.as_millis().to_string(),
            "STREAMS".to_owned(),
            self.stream.clone(),
            after.to_string(),
        ];
        let options = Options {
            timeout: Some(self.block_time + Duration::from_secs(5)),
            ..Options::default()
        };
        self.client
            .with_options(&options)
            .custom(command, args)
            .await
    }

    /// Counts and logs an entry that cannot be read: the first, then every
    /// thousandth at `warn`, the others at `debug`.
    fn malformed(&self, id: Option<StreamId>, why: &dyn std::fmt::Display) {
        let before = self.malformed.fetch_add(1, Ordering::Relaxed);
        if before % 1000 == 0 {
            tracing::warn!(stream = self.stream, ?id, %why, malformed = before + 1, "skipping malformed stream entries");
        } else {
            tracing::debug!(?id, %why, "skipping a malformed stream entry");
        }
    }

    /// Hands an entry to its namespace's adapter, if this process has it.
    fn deliver(&self, entry: &RawEntry) {
        let Some(nsp) = entry.field("nsp") else {
            return self.malformed(Some(entry.id), &"entry without nsp");
        };
        let Some(core) = std::str::from_utf8(nsp)
            .ok()
            .and_then(|nsp| self.namespaces.find(nsp))
        else {
            return;
        };
        match entry::decode(entry) {
            Ok(message) => core.on_entry(message, entry.id),
            Err(error) => self.malformed(Some(entry.id), &error),
        }
    }
}

async fn read_loop(reader: Loop, position: watch::Sender<Option<StreamId>>) {
    let mut last = loop {
        match reader.last_entry().await {
            Ok(id) => break id,
            Err(error) => {
                tracing::warn!(%error, stream = reader.stream, "reading the stream's end failed; will retry");
                tokio::time::sleep(RETRY).await;
            }
        }
    };
    position.send_replace(Some(last));
    loop {
        let reply = match reader.read(last).await {
            Ok(reply) => reply,
            Err(error) => {
                tracing::debug!(%error, stream = reader.stream, "XREAD failed; will retry");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        let (entries, unreadable) = entry::read_entries(reply);
        for _ in 0..unreadable {
            reader.malformed(None, &"unreadable entry in an XREAD reply");
        }
        if entries.is_empty() {
            continue;
        }
        let _paused = reader.gate.write().await;
        for entry in &entries {
            if entry.id > last {
                reader.deliver(entry);
                last = entry.id;
            }
        }
        position.send_replace(Some(last));
    }
}
