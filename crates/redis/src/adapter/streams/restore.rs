//! Restoring a session from Redis (Node's `restoreSession`): the session
//! read and deleted atomically (`MULTI GET DEL EXEC`), its offset checked
//! to still be in the stream (`XRANGE offset offset`), then the broadcasts
//! after the offset that its rooms would have received, from `XRANGE`.
//!
//! Unlike Node, the replay stops at this process's reader position, with
//! the reader paused until the socket is connected (see `reader.rs`), and
//! replays only what recovery records (events without ack, not volatile):
//! Node replays every broadcast entry, and races its own reader.

use std::sync::Arc;
use std::time::Duration;

use fred::interfaces::{ClientLike, KeysInterface, TransactionInterface};
use fred::types::{ClusterHash, CustomCommand, Value as RedisValue};
use iocluster_socketio::Payload;
use iocluster_socketio::adapter::{PersistedSession, RestoreHold, RestoredSession};
use serde_json::Value;

use super::entry::{self, RawEntry};
use super::id::StreamId;
use super::session;
use super::transport::StreamsCore;
use crate::adapter::cluster::wire::{MessageType, wire_opts};

/// Entries read per `XRANGE` of a replay.
const RANGE_COUNT: u64 = 1000;

/// The most `XRANGE` calls of one replay (Node: 100).
const MAX_RANGES: usize = 100;

/// How long a restore waits for this process's reader to reach the
/// client's offset (written through another server, read here later).
const CATCH_UP: Duration = Duration::from_secs(2);

impl StreamsCore {
    /// `XRANGE stream start end [COUNT n]`.
    async fn range(
        &self,
        start: StreamId,
        end: StreamId,
        count: Option<u64>,
    ) -> Result<Vec<RawEntry>, fred::error::Error> {
        let command = CustomCommand::new_static("XRANGE", ClusterHash::Offset(0), false);
        let mut args = vec![
            self.transport.config.stream_name.clone(),
            start.to_string(),
            end.to_string(),
        ];
        if let Some(count) = count {
            args.extend(["COUNT".to_owned(), count.to_string()]);
        }
        let reply: RedisValue = self.transport.client.custom(command, args).await?;
        Ok(entry::range_entries(reply).0)
    }

    /// `MULTI GET key DEL key EXEC`: the session, gone from Redis.
    async fn take_session(
        &self,
        key: &str,
    ) -> Result<Option<PersistedSession>, fred::error::Error> {
        let transaction = self.transport.client.multi();
        let _: () = transaction.get(key).await?;
        let _: () = transaction.del(key).await?;
        let replies: Vec<RedisValue> = transaction.exec(true).await?;
        let raw = replies.into_iter().next().and_then(session::bytes_of);
        Ok(raw.and_then(|raw| session::decode(&raw)))
    }

    /// The missed broadcast in entry `entry`, if the session gets it.
    fn missed_in(&self, entry: &RawEntry, session: &PersistedSession) -> Option<Payload> {
        if entry.field("nsp").map(|n| n.as_ref()) != Some(self.nsp.as_bytes())
            || entry.field("type").map(|t| t.as_ref()) != Some(b"3")
        {
            return None;
        }
        let message = match entry::decode(entry) {
            Ok(message) if message.kind == MessageType::Broadcast => message,
            _ => return None,
        };
        let opts = wire_opts(&message.data);
        if !self.records(message.str("requestId").is_some(), opts.flags.volatile)
            || !opts.includes(&session.rooms)
        {
            return None;
        }
        let mut packet = message.data.get("packet")?.clone();
        if let Value::Object(map) = &mut packet {
            map.entry("nsp")
                .or_insert_with(|| Value::String(self.nsp.clone()));
        }
        let packet = crate::wire::packet_of(packet, message.attachments).ok()?;
        let Some(Value::Array(mut args)) = packet.data else {
            return None;
        };
        args.push(Value::String(entry.id.to_string()));
        Some(Payload {
            args,
            attachments: packet.attachments,
        })
    }

    /// Finds session `pid` and the broadcasts it missed after `offset`.
    pub(super) async fn restore(
        self: Arc<Self>,
        pid: String,
        offset: String,
    ) -> Option<RestoredSession> {
        let offset = StreamId::parse(&offset)?;
        let key = session::key(&self.transport.config.session_key_prefix, &pid);
        let (session, exists) =
            tokio::join!(self.take_session(&key), self.range(offset, offset, None));
        let session = match session {
            Ok(Some(session)) => session,
            Ok(None) => return None,
            Err(error) => {
                tracing::warn!(%error, "reading a session from redis failed");
                return None;
            }
        };
        if !exists.is_ok_and(|entries| !entries.is_empty()) {
            tracing::debug!(%offset, "recovery offset no longer in the stream");
            return None;
        }
        if !self.transport.reader.reached(offset, CATCH_UP).await {
            tracing::warn!(%offset, "the stream reader is behind the client's offset; recovering anyway");
        }
        let (guard, position) = self.transport.reader.pause().await;
        let end = position.unwrap_or(offset);
        let mut missed = Vec::new();
        let mut after = offset;
        for _ in 0..MAX_RANGES {
            if after >= end {
                break;
            }
            let entries = match self.range(after.next(), end, Some(RANGE_COUNT)).await {
                Ok(entries) => entries,
                Err(error) => {
                    tracing::warn!(%error, "reading missed packets from redis failed");
                    return None;
                }
            };
            let Some(last) = entries.last() else { break };
            after = last.id;
            missed.extend(entries.iter().filter_map(|e| self.missed_in(e, &session)));
        }
        Some(RestoredSession {
            session,
            missed,
            hold: RestoreHold::new(guard),
        })
    }
}
