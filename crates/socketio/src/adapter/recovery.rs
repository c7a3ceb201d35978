//! Connection state recovery storage (socket.io 4.6+ `connectionStateRecovery`):
//! the sessions of disconnected sockets and the broadcasts they may have
//! missed, kept for `max_disconnection_duration`.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::BroadcastOptions;
use crate::parser::{Packet, PacketType};
use crate::payload::Payload;

/// What is kept of a disconnected socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersistedSession {
    /// The socket id, given back on recovery.
    pub sid: String,
    /// The private session id the client presents to recover.
    pub pid: String,
    /// The rooms the socket was in.
    pub rooms: Vec<String>,
    /// The socket's data.
    pub data: Value,
}

/// A session found again, with the events it missed (their arguments, the
/// event name first and the offset last).
#[derive(Debug, Clone, PartialEq)]
pub struct RestoredSession {
    /// The persisted session.
    pub session: PersistedSession,
    /// The missed events, oldest first.
    pub missed: Vec<Payload>,
    /// Held until the restored socket is in its namespace and its missed
    /// events are queued (see [`RestoreHold`]).
    pub hold: RestoreHold,
}

/// Something an adapter keeps alive from the moment it computed the missed
/// events until the restored socket is in its namespace, its missed events
/// queued: an adapter that delivers other servers' broadcasts from an
/// ordered log (the Redis streams adapter) pauses that delivery meanwhile,
/// so each broadcast reaches the socket exactly once, either among the
/// missed events or live. Dropped at once when the connection fails. With
/// `skip_middlewares` off, the namespace's middlewares run while it is
/// held. An adapter that cannot pause its deliveries for that long gives a
/// [`RestoreGate`] instead. The default holds nothing.
#[derive(Clone, Default)]
pub struct RestoreHold {
    guard: Option<std::sync::Arc<dyn std::any::Any + Send + Sync>>,
    gate: Option<std::sync::Arc<dyn RestoreGate>>,
}

/// How an adapter admits a restored socket when its broadcasts may be
/// delivered on other threads while the socket connects (the cluster
/// adapter: a worker applies other workers' broadcasts on its own thread).
pub trait RestoreGate: Send + Sync {
    /// Appends to `missed` what this server delivered since the missed
    /// events were computed (the socket was not there to get it), then calls
    /// `admit` with them, with the adapter's deliveries held back: `admit`
    /// puts the socket in its namespace and queues its CONNECT and missed
    /// events, so every broadcast reaches the socket exactly once and in
    /// order, among the missed events or live. `admit` must not wait.
    fn admit(&self, missed: Vec<Payload>, admit: &mut dyn FnMut(Vec<Payload>));
}

impl RestoreHold {
    /// Holds `guard` until the restored socket is connected.
    pub fn new(guard: impl std::any::Any + Send + Sync) -> Self {
        RestoreHold {
            guard: Some(std::sync::Arc::new(guard)),
            gate: None,
        }
    }

    /// Admits the restored socket through `gate` (see [`RestoreGate`]).
    pub fn gated(gate: impl RestoreGate + 'static) -> Self {
        RestoreHold {
            guard: None,
            gate: Some(std::sync::Arc::new(gate)),
        }
    }

    /// Runs `admit` with the missed events, through the adapter's gate if
    /// it gave one.
    pub fn admit(&self, missed: Vec<Payload>, admit: &mut dyn FnMut(Vec<Payload>)) {
        match &self.gate {
            Some(gate) => gate.admit(missed, admit),
            None => admit(missed),
        }
    }
}

impl std::fmt::Debug for RestoreHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match (&self.guard, &self.gate) {
            (_, Some(_)) => "RestoreHold(gated)",
            (Some(_), None) => "RestoreHold(held)",
            (None, None) => "RestoreHold(none)",
        })
    }
}

/// Holds compare equal: they are not part of what was restored.
impl PartialEq for RestoreHold {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

struct StoredPacket {
    offset: String,
    opts: BroadcastOptions,
    args: Vec<Value>,
    attachments: Vec<Bytes>,
    at: Instant,
}

#[derive(Default)]
struct State {
    sessions: HashMap<String, (PersistedSession, Instant)>,
    packets: VecDeque<StoredPacket>,
    counter: u64,
}

/// The in-memory recovery store: bounded by age and by count.
pub struct RecoveryStore {
    max_age: Duration,
    max_packets: usize,
    prefix: String,
    state: Mutex<State>,
}

impl std::fmt::Debug for RecoveryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoveryStore")
            .field("max_age", &self.max_age)
            .field("max_packets", &self.max_packets)
            .finish_non_exhaustive()
    }
}

impl RecoveryStore {
    /// A store keeping sessions and packets for `max_age`, and at most
    /// `max_packets` packets (the oldest go first; a client whose offset was
    /// dropped gets a new session instead of a recovered one).
    pub fn new(max_age: Duration, max_packets: usize) -> Self {
        RecoveryStore {
            max_age,
            max_packets,
            prefix: iocluster_engineio::random_base64url::<6>(),
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a broadcast is kept for recovery: plain events without ack,
    /// not volatile (as Node's session-aware adapter decides).
    pub fn is_recorded(packet: &Packet, opts: &BroadcastOptions) -> bool {
        packet.kind == PacketType::Event && packet.id.is_none() && !opts.flags.volatile
    }

    /// A new unique offset.
    pub fn next_offset(&self) -> String {
        let mut state = self.lock();
        state.counter += 1;
        format!("{}-{}", self.prefix, state.counter)
    }

    /// Appends a new offset to a recorded broadcast's arguments and keeps it.
    pub fn record(&self, packet: &mut Packet, opts: &BroadcastOptions) {
        if !Self::is_recorded(packet, opts) {
            return;
        }
        let offset = self.next_offset();
        if let Some(Value::Array(args)) = &mut packet.data {
            args.push(Value::String(offset.clone()));
        }
        self.keep(offset, packet, opts);
    }

    /// Keeps a packet whose arguments already end with `offset`.
    pub fn keep(&self, offset: String, packet: &Packet, opts: &BroadcastOptions) {
        let args = match &packet.data {
            Some(Value::Array(args)) => args.clone(),
            _ => return,
        };
        let now = Instant::now();
        let mut state = self.lock();
        Self::expire(&mut state, now, self.max_age);
        state.packets.push_back(StoredPacket {
            offset,
            opts: opts.clone(),
            args,
            attachments: packet.attachments.clone(),
            at: now,
        });
        while state.packets.len() > self.max_packets {
            state.packets.pop_front();
        }
    }

    /// Keeps a disconnected socket's session.
    pub fn persist(&self, session: PersistedSession) {
        let now = Instant::now();
        let mut state = self.lock();
        Self::expire(&mut state, now, self.max_age);
        state.sessions.insert(session.pid.clone(), (session, now));
    }

    /// Takes a session back with the packets it missed after `offset`; none
    /// when the session or the offset is unknown or too old.
    pub fn restore(&self, pid: &str, offset: &str) -> Option<RestoredSession> {
        let now = Instant::now();
        let mut state = self.lock();
        Self::expire(&mut state, now, self.max_age);
        let (session, _) = state.sessions.remove(pid)?;
        let index = state.packets.iter().position(|p| p.offset == offset)?;
        let missed = state
            .packets
            .iter()
            .skip(index + 1)
            .filter(|p| p.opts.includes(&session.rooms))
            .map(|p| Payload {
                args: p.args.clone(),
                attachments: p.attachments.clone(),
            })
            .collect();
        Some(RestoredSession {
            session,
            missed,
            hold: RestoreHold::default(),
        })
    }

    fn expire(state: &mut State, now: Instant, max_age: Duration) {
        state
            .sessions
            .retain(|_, (_, at)| now.duration_since(*at) <= max_age);
        while state
            .packets
            .front()
            .is_some_and(|p| now.duration_since(p.at) > max_age)
        {
            state.packets.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(args: Value) -> Packet {
        Packet {
            kind: PacketType::Event,
            nsp: "/".into(),
            id: None,
            data: Some(args),
            attachments: vec![],
        }
    }

    fn session(rooms: &[&str]) -> PersistedSession {
        PersistedSession {
            sid: "sid".into(),
            pid: "pid".into(),
            rooms: rooms.iter().map(|r| r.to_string()).collect(),
            data: Value::Null,
        }
    }

    #[test]
    fn restores_the_packets_missed_after_the_offset_for_the_sessions_rooms() {
        let store = RecoveryStore::new(Duration::from_secs(60), 100);
        let all = BroadcastOptions::default();
        let mut first = event(json!(["a"]));
        store.record(&mut first, &all);
        let offset = first
            .data
            .as_ref()
            .and_then(|d| d[1].as_str())
            .unwrap()
            .to_owned();
        let mut to_room = event(json!(["b"]));
        store.record(
            &mut to_room,
            &BroadcastOptions {
                rooms: vec!["r1".into()],
                ..Default::default()
            },
        );
        let mut other_room = event(json!(["c"]));
        store.record(
            &mut other_room,
            &BroadcastOptions {
                rooms: vec!["r2".into()],
                ..Default::default()
            },
        );
        store.persist(session(&["sid", "r1"]));
        let restored = store.restore("pid", &offset).expect("restored");
        let names: Vec<_> = restored.missed.iter().map(|p| p.args[0].clone()).collect();
        assert_eq!(names, vec![json!("b")]);
        assert!(
            store.restore("pid", &offset).is_none(),
            "a session is restored once"
        );
    }

    #[test]
    fn unknown_offset_or_expired_session_is_not_restored() {
        let store = RecoveryStore::new(Duration::from_millis(0), 100);
        store.persist(session(&[]));
        assert!(store.restore("pid", "nope").is_none());
    }

    #[test]
    fn keeps_at_most_max_packets() {
        let store = RecoveryStore::new(Duration::from_secs(60), 2);
        let all = BroadcastOptions::default();
        let mut first = event(json!(["a"]));
        store.record(&mut first, &all);
        let offset = first
            .data
            .as_ref()
            .and_then(|d| d[1].as_str())
            .unwrap()
            .to_owned();
        for _ in 0..2 {
            store.record(&mut event(json!(["x"])), &all);
        }
        store.persist(session(&[]));
        assert!(store.restore("pid", &offset).is_none());
    }
}
