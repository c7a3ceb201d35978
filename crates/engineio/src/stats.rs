//! Counters of this process's engines (traffic, and what they had to cut
//! or refuse), for status and metrics: process-wide, relaxed atomics (a
//! counter costs one uncontended add where it happens; readers take a
//! snapshot).

use std::sync::atomic::{AtomicU64, Ordering};

/// One process-wide counter.
#[derive(Debug)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    const fn new() -> Self {
        Counter(AtomicU64::new(0))
    }

    /// Adds one.
    pub(crate) fn increment(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n`.
    pub(crate) fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Connections closed because a write made no progress for the
/// connection's `write_stall` limit (the client stopped reading).
pub(crate) static WRITE_STALLS: Counter = Counter::new();
/// WebSocket connections closed at once, with messages still unsent,
/// because their session ended (heartbeat, server close, shutdown).
pub(crate) static CLOSED_WITH_UNSENT: Counter = Counter::new();
/// Messages refused because a session's send buffer was full (by count or
/// by bytes): the client does not read fast enough.
pub(crate) static BUFFER_FULL: Counter = Counter::new();
/// Sessions opened (handshakes that succeeded).
pub(crate) static SESSIONS_OPENED: Counter = Counter::new();
/// Polling sessions upgraded to WebSocket.
pub(crate) static UPGRADES: Counter = Counter::new();
/// Messages received from clients, and their bytes.
pub(crate) static MESSAGES_RECEIVED: Counter = Counter::new();
pub(crate) static BYTES_RECEIVED: Counter = Counter::new();
/// Messages written to clients, and their bytes.
pub(crate) static MESSAGES_SENT: Counter = Counter::new();
pub(crate) static BYTES_SENT: Counter = Counter::new();

/// Counts a message received.
pub(crate) fn received(message: &crate::Message) {
    MESSAGES_RECEIVED.increment();
    BYTES_RECEIVED.add(message.len() as u64);
}

/// Counts the messages among packets written to a client.
pub(crate) fn sent<'a>(packets: impl IntoIterator<Item = &'a crate::packet::Packet>) {
    let (mut messages, mut bytes) = (0, 0);
    for packet in packets {
        if let crate::packet::Packet::Message(message) = packet {
            messages += 1;
            bytes += message.len() as u64;
        }
    }
    if messages > 0 {
        MESSAGES_SENT.add(messages);
        BYTES_SENT.add(bytes);
    }
}

/// What this process's engines have cut or refused so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Connections closed because a write made no progress for the
    /// connection's write-stall limit.
    pub write_stalls: u64,
    /// WebSocket connections closed with messages unsent because their
    /// session ended.
    pub closed_with_unsent: u64,
    /// Messages refused because a session's send buffer was full.
    pub buffer_full: u64,
    /// Sessions opened.
    pub sessions_opened: u64,
    /// Polling sessions upgraded to WebSocket.
    pub upgrades: u64,
    /// Messages received from clients.
    pub messages_received: u64,
    /// Bytes of the messages received.
    pub bytes_received: u64,
    /// Messages written to clients.
    pub messages_sent: u64,
    /// Bytes of the messages written.
    pub bytes_sent: u64,
}

impl EngineStats {
    /// The counters now.
    pub fn now() -> EngineStats {
        EngineStats {
            write_stalls: WRITE_STALLS.get(),
            closed_with_unsent: CLOSED_WITH_UNSENT.get(),
            buffer_full: BUFFER_FULL.get(),
            sessions_opened: SESSIONS_OPENED.get(),
            upgrades: UPGRADES.get(),
            messages_received: MESSAGES_RECEIVED.get(),
            bytes_received: BYTES_RECEIVED.get(),
            messages_sent: MESSAGES_SENT.get(),
            bytes_sent: BYTES_SENT.get(),
        }
    }
}
