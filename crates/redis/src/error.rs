//! The errors of this crate.

use crate::msgpack::DecodeError;

/// Why a Redis operation or a message failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Redis refused or the connection failed.
    #[error("redis: {0}")]
    Redis(#[from] fred::error::Error),
    /// A msgpack message could not be read.
    #[error("malformed msgpack message: {0}")]
    Msgpack(#[from] DecodeError),
    /// A JSON message could not be read or written.
    #[error("malformed JSON message: {0}")]
    Json(#[from] serde_json::Error),
    /// A message has the wrong shape.
    #[error("malformed message: {0}")]
    Malformed(&'static str),
    /// The event name is reserved by Socket.IO (`connect`, `disconnect`, …).
    #[error("\"{0}\" is a reserved event name")]
    ReservedEvent(String),
}
