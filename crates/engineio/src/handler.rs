//! What the layer above is told about sessions.

use std::sync::Arc;

use crate::packet::Message;
use crate::session::Session;

/// Why a session closed, with Node's wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The client closed the session or its connection (`transport close`).
    TransportClose,
    /// The transport failed or the client broke the protocol (`transport error`).
    TransportError,
    /// No pong within `pingTimeout` (`ping timeout`).
    PingTimeout,
    /// The client sent a packet that does not decode (`parse error`).
    ParseError,
    /// The server closed the session (`forced close`).
    ForcedClose,
    /// The server is shutting down (`server shutting down`).
    ServerShuttingDown,
}

impl CloseReason {
    /// The reason as Node's engine.io and socket.io name it.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::TransportClose => "transport close",
            CloseReason::TransportError => "transport error",
            CloseReason::PingTimeout => "ping timeout",
            CloseReason::ParseError => "parse error",
            CloseReason::ForcedClose => "forced close",
            CloseReason::ServerShuttingDown => "server shutting down",
        }
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Receives the events of every session of an engine.
///
/// Methods are called from the session's transport tasks, in order for one
/// session: `on_open` first, then messages and upgrades, `on_close` last and
/// once. They should return quickly: spawn a task for slow work.
pub trait EngineHandler: Send + Sync + 'static {
    /// A session was opened by a handshake.
    fn on_open(&self, session: &Arc<Session>);
    /// The client sent a message.
    fn on_message(&self, session: &Arc<Session>, message: Message);
    /// The session closed; it accepts no more messages.
    fn on_close(&self, session: &Arc<Session>, reason: CloseReason);
    /// The session moved from polling to WebSocket.
    fn on_upgrade(&self, session: &Arc<Session>) {
        let _ = session;
    }
}
