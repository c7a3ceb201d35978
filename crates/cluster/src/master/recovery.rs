//! Connection state recovery for the whole cluster, kept by the master so
//! that it outlives any worker: the recoverable state of every socket (sent
//! by its worker as it changes) and the recorded broadcasts, as the opaque
//! envelopes the workers exchanged. The master reads only the envelopes'
//! headers (namespace, target rooms, offset), never the packets.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use iocluster_socketio::adapter::BroadcastOptions;
use serde_json::{Value, json};

use crate::adapter::envelope::{self, Header};
use crate::sid::InstanceId;

struct Record {
    nsp: String,
    session: Value,
    rooms: Vec<String>,
    owner: Option<InstanceId>,
    disconnected: Option<Instant>,
}

struct Logged {
    nsp: String,
    offset: String,
    opts: BroadcastOptions,
    envelope: Bytes,
    at: Instant,
}

/// The cluster's recovery state.
pub(crate) struct Recovery {
    max_age: Duration,
    max_packets: usize,
    max_bytes: usize,
    /// Bytes of the envelopes in `packets`.
    bytes: usize,
    sessions: HashMap<String, Record>,
    packets: VecDeque<Logged>,
    /// The sequence number of `packets`' front (each packet's is its
    /// position plus this).
    first_seq: u64,
    /// Each kept packet's sequence number, by (namespace, offset): a
    /// restore finds where to resume at once, not by scanning (a reconnect
    /// storm restores thousands of sessions at once).
    index: HashMap<(String, String), u64>,
    /// When disconnected sessions were last swept for expiry.
    swept: Option<Instant>,
}

/// How often expired sessions are swept. Sweeping visits every session; a
/// reconnect storm persists and restores thousands at once, so it runs at
/// most this often (a restore checks its own session's age anyway).
const SWEEP_EVERY: Duration = Duration::from_secs(1);

fn pid_and_rooms(session: &Value) -> Option<(String, Vec<String>)> {
    let pid = session.get("pid")?.as_str()?.to_owned();
    let rooms = session
        .get("rooms")?
        .as_array()?
        .iter()
        .filter_map(|r| r.as_str().map(str::to_owned))
        .collect();
    Some((pid, rooms))
}

impl Recovery {
    pub(crate) fn new(max_age: Duration, max_packets: usize, max_bytes: usize) -> Self {
        Recovery {
            max_age,
            max_packets,
            max_bytes,
            bytes: 0,
            sessions: HashMap::new(),
            packets: VecDeque::new(),
            first_seq: 0,
            index: HashMap::new(),
            swept: None,
        }
    }

    fn expire(&mut self, now: Instant) {
        let max_age = self.max_age;
        if self
            .swept
            .is_none_or(|at| now.duration_since(at) >= SWEEP_EVERY)
        {
            self.swept = Some(now);
            self.sessions.retain(|_, r| {
                r.disconnected
                    .is_none_or(|at| now.duration_since(at) <= max_age)
            });
        }
        while self
            .packets
            .front()
            .is_some_and(|p| now.duration_since(p.at) > max_age)
        {
            self.pop_oldest();
        }
    }

    fn upsert(
        &mut self,
        owner: Option<InstanceId>,
        nsp: String,
        session: Value,
        disconnected: Option<Instant>,
    ) {
        let Some((pid, rooms)) = pid_and_rooms(&session) else {
            return;
        };
        self.sessions.insert(
            pid,
            Record {
                nsp,
                session,
                rooms,
                owner,
                disconnected,
            },
        );
    }

    /// A connected socket's state.
    pub(crate) fn track(&mut self, owner: InstanceId, nsp: String, session: Value) {
        self.upsert(Some(owner), nsp, session, None);
    }

    /// A socket disconnected in a recoverable way.
    pub(crate) fn persist(&mut self, nsp: String, session: Value) {
        let now = Instant::now();
        self.expire(now);
        self.upsert(None, nsp, session, Some(now));
    }

    /// A socket left for good.
    pub(crate) fn forget(&mut self, pid: &str) {
        self.sessions.remove(pid);
    }

    /// A worker died: its sockets disconnected now.
    pub(crate) fn worker_gone(&mut self, instance: InstanceId) {
        let now = Instant::now();
        for record in self.sessions.values_mut() {
            if record.owner == Some(instance) && record.disconnected.is_none() {
                record.disconnected = Some(now);
                record.owner = None;
            }
        }
        self.expire(now);
    }

    /// Keeps a broadcast flagged for recovery.
    pub(crate) fn record(&mut self, envelope: Bytes) {
        let Ok(Header::Broadcast {
            nsp,
            opts,
            offset: Some(offset),
        }) = envelope::decode_header(&envelope)
        else {
            tracing::warn!("recovery record without a broadcast header dropped");
            return;
        };
        let now = Instant::now();
        self.expire(now);
        self.bytes += envelope.len();
        let seq = self.first_seq + self.packets.len() as u64;
        self.index.insert((nsp.clone(), offset.clone()), seq);
        self.packets.push_back(Logged {
            nsp,
            offset,
            opts,
            envelope,
            at: now,
        });
        while self.packets.len() > self.max_packets || self.bytes > self.max_bytes {
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) {
        if let Some(oldest) = self.packets.pop_front() {
            self.bytes -= oldest.envelope.len();
            self.first_seq += 1;
            self.index.remove(&(oldest.nsp, oldest.offset));
        }
    }

    /// Takes a disconnected session with the broadcasts it missed after
    /// `offset`: the record is `{"session": …, "disconnected_ms": …}`.
    pub(crate) fn restore(
        &mut self,
        nsp: &str,
        pid: &str,
        offset: &str,
    ) -> (Option<Bytes>, Vec<Bytes>) {
        let now = Instant::now();
        self.expire(now);
        let Some(record) = self.sessions.get(pid) else {
            return (None, Vec::new());
        };
        let Some(disconnected) = record.disconnected else {
            return (None, Vec::new());
        };
        if now.duration_since(disconnected) > self.max_age {
            self.sessions.remove(pid);
            return (None, Vec::new());
        }
        if record.nsp != nsp {
            return (None, Vec::new());
        }
        let Some(index) = self
            .index
            .get(&(nsp.to_owned(), offset.to_owned()))
            .and_then(|seq| usize::try_from(seq - self.first_seq).ok())
        else {
            return (None, Vec::new());
        };
        let Some(record) = self.sessions.remove(pid) else {
            return (None, Vec::new());
        };
        let missed = self
            .packets
            .iter()
            .skip(index + 1)
            .filter(|p| p.nsp == nsp && p.opts.includes(&record.rooms))
            .map(|p| p.envelope.clone())
            .collect();
        let answer = json!({
            "session": record.session,
            "disconnected_ms": now.duration_since(disconnected).as_millis() as u64,
        });
        (serde_json::to_vec(&answer).ok().map(Bytes::from), missed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broadcast(offset: &str) -> Bytes {
        let header = Header::Broadcast {
            nsp: "/".into(),
            opts: BroadcastOptions::default(),
            offset: Some(offset.into()),
        };
        envelope::encode(&header, &[Bytes::from(format!("42[\"e\",\"{offset}\"]"))])
    }

    fn session(pid: &str) -> Value {
        json!({ "sid": "s", "pid": pid, "rooms": [], "data": null })
    }

    fn restored_count(recovery: &mut Recovery, pid: &str, offset: &str) -> Option<usize> {
        let (record, packets) = recovery.restore("/", pid, offset);
        record.map(|_| packets.len())
    }

    #[test]
    fn a_session_resumes_after_the_offset_it_saw() {
        let mut recovery = Recovery::new(Duration::from_secs(60), 100, 1 << 20);
        for offset in ["1-1", "1-2", "1-3"] {
            recovery.record(broadcast(offset));
        }
        recovery.persist("/".into(), session("p"));
        assert_eq!(restored_count(&mut recovery, "p", "1-1"), Some(2));
        assert_eq!(
            restored_count(&mut recovery, "p", "1-1"),
            None,
            "taken once"
        );
    }

    #[test]
    fn evicted_packets_cannot_be_resumed_from() {
        let mut recovery = Recovery::new(Duration::from_secs(60), 2, 1 << 20);
        for offset in ["1-1", "1-2", "1-3"] {
            recovery.record(broadcast(offset));
        }
        recovery.persist("/".into(), session("p"));
        assert_eq!(
            restored_count(&mut recovery, "p", "1-1"),
            None,
            "1-1 was evicted"
        );
        recovery.persist("/".into(), session("q"));
        assert_eq!(restored_count(&mut recovery, "q", "1-2"), Some(1));
    }

    #[test]
    fn the_byte_bound_evicts_the_oldest() {
        let size = broadcast("1-1").len();
        let mut recovery = Recovery::new(Duration::from_secs(60), 100, 2 * size);
        for offset in ["1-1", "1-2", "1-3"] {
            recovery.record(broadcast(offset));
        }
        assert_eq!(recovery.packets.len(), 2);
        assert_eq!(recovery.bytes, 2 * size);
        recovery.persist("/".into(), session("p"));
        assert_eq!(restored_count(&mut recovery, "p", "1-2"), Some(1));
    }
}
