//! The control channel between the master and one worker, over an
//! inherited Unix stream socketpair (reachable by no other process).
//!
//! Frames are length-prefixed; the first byte says what follows:
//! - `0`: a JSON control message ([`WorkerMessage`] / [`MasterMessage`]);
//! - `1`: a relay frame for the cluster adapter: worker → master
//!   `[1][target u32][flags u8][payload]` (target 0: every other worker,
//!   `u32::MAX`: the master only), master → worker `[1][source u32][payload]`.
//!   The master never looks inside the payload, except the envelope header
//!   of frames flagged for recovery;
//! - `2`: a recovery answer, master → worker:
//!   `[2][request u64][record len u32][record JSON][count u32]([len u32][payload])*`.

use serde::{Deserialize, Serialize};

use crate::report::WorkerReport;

mod channel;
mod frame;

pub(crate) use channel::{ControlChannel, ControlSink, ControlStream, Side};
pub(crate) use frame::Frame;

/// Relay target: every other worker.
pub(crate) const TO_ALL: u32 = 0;
/// Relay target: the master only (recovery records of local broadcasts).
pub(crate) const TO_MASTER: u32 = u32::MAX;
/// Relay flag: the master keeps this broadcast for connection state recovery.
pub(crate) const FLAG_RECORD: u8 = 1;

/// What a worker tells the master.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum WorkerMessage {
    /// The worker serves connections from now on.
    Ready,
    /// A session opened on this worker.
    SessionOpened {
        /// Its id.
        sid: String,
    },
    /// A session closed on this worker.
    SessionClosed {
        /// Its id.
        sid: String,
    },
    /// A socket's recoverable state (connected, joined, left, data).
    TrackSession {
        /// The namespace.
        nsp: String,
        /// `{sid, pid, rooms, data}`.
        record: serde_json::Value,
    },
    /// A socket disconnected in a recoverable way: its state is kept.
    PersistSession {
        /// The namespace.
        nsp: String,
        /// `{sid, pid, rooms, data}`.
        record: serde_json::Value,
    },
    /// A socket left for good.
    ForgetSession {
        /// Its private session id.
        pid: String,
    },
    /// Asks for a stream to another worker, to proxy a request for one of
    /// its sessions that arrived on a kept-alive connection.
    Connect {
        /// Request number, echoed in the answer.
        request: u64,
        /// The worker owning the session.
        instance: u32,
        /// The client's address, for the owner.
        remote: Option<String>,
    },
    /// The worker's counters, answering a `ReportRequest`.
    Report {
        /// The request number.
        request: u64,
        /// The counters.
        report: WorkerReport,
    },
    /// Asks where another node is reachable.
    PeerLookup {
        /// Request number, echoed in the answer.
        request: u64,
        /// The node.
        node: u32,
    },
    /// Asks for a disconnected session and the broadcasts it missed.
    Restore {
        /// Request number, echoed in the answer.
        request: u64,
        /// The namespace.
        nsp: String,
        /// The private session id.
        pid: String,
        /// The last offset the client saw.
        offset: String,
    },
}

/// What the master tells a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum MasterMessage {
    /// Close every session cleanly and exit.
    Shutdown,
    /// The workers alive now (the recipient included).
    Peers {
        /// Their instance numbers.
        instances: Vec<u32>,
    },
    /// No stream for a `Connect`: the worker is gone.
    ConnectFailed {
        /// The request number.
        request: u64,
    },
    /// A worker is gone: requests waiting on it stop waiting.
    WorkerGone {
        /// Its instance number.
        instance: u32,
    },
    /// Asks for the worker's counters (answered with a `Report`).
    ReportRequest {
        /// Request number, echoed in the answer.
        request: u64,
    },
    /// Read the TLS certificate and key again (SIGHUP).
    ReloadTls,
    /// Where a node is reachable, answering a `PeerLookup`.
    PeerAddress {
        /// The request number.
        request: u64,
        /// `host:port`; none when the node is unknown or gone.
        addr: Option<String>,
    },
}

/// Decodes a JSON control message, logging what does not decode.
pub(crate) fn parse<M: for<'de> Deserialize<'de>>(json: &[u8]) -> Option<M> {
    match serde_json::from_slice(json) {
        Ok(message) => Some(message),
        Err(error) => {
            tracing::warn!(%error, "undecodable control message skipped");
            None
        }
    }
}
