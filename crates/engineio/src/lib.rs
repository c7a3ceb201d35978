//! Engine.IO v4 server: HTTP long-polling, WebSocket and the upgrade between
//! them, heartbeats, limits and Node's error codes, as an axum service.
//!
//! The layer above implements [`EngineHandler`] and sends with
//! [`Session::send`]. The engine knows nothing of Socket.IO or of processes;
//! the cluster plugs in through [`SidGenerator`] (session ids that name their
//! worker) and [`serve_connection`] (sockets handed over with bytes already
//! read).
#![deny(missing_docs)]

mod config;
mod cookie;
mod cors;
mod engine;
mod error;
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod fuzz;
mod handler;
mod handshake;
mod heartbeat;
mod io;
mod packet;
mod payload;
mod query;
mod serve;
mod service;
mod session;
mod sid;
mod stall;
mod stats;
mod transport;

pub use config::{AllowRequest, EngineConfig, SessionObserver, Transports};
pub use cookie::{CookieConfig, SameSite};
pub use cors::{Cors, CorsOrigin};
pub use engine::Engine;
pub use error::{ErrorCode, PacketError, RequestError};
pub use handler::{CloseReason, EngineHandler};
pub use handshake::Handshake;
pub use io::PrefixedIo;
pub use packet::{Message, Text};
pub use query::EngineQuery;
pub use serve::{ConnectionLimits, serve, serve_connection, serve_io};
pub use session::{SendError, Session};
pub use sid::{RandomSid, Sid, SidGenerator, random_base64url};
pub use stats::EngineStats;
pub use transport::TransportKind;

/// Encoding and decoding of polling payloads, public for benchmarks and
/// fuzzing.
pub mod codec {
    pub use crate::payload::SEPARATOR;

    /// Decodes a polling body and returns how many packets it holds.
    pub fn decode_payload(body: &[u8]) -> Result<usize, crate::PacketError> {
        crate::payload::decode(body).map(|packets| packets.len())
    }

    /// Encodes messages as a polling payload.
    pub fn encode_payload(messages: &[crate::Message]) -> String {
        let packets: Vec<_> = messages
            .iter()
            .cloned()
            .map(crate::packet::Packet::Message)
            .collect();
        crate::payload::encode(packets.iter())
    }
}
