//! Why a socket left its namespace.

use iocluster_engineio::CloseReason;

/// Why a socket disconnected, with Node's wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DisconnectReason {
    /// The client's connection closed (`transport close`).
    TransportClose,
    /// The connection failed (`transport error`).
    TransportError,
    /// The client stopped answering pings (`ping timeout`).
    PingTimeout,
    /// The client sent something that does not decode (`parse error`).
    ParseError,
    /// The server closed the connection (`forced close`).
    ForcedClose,
    /// The server is shutting down (`server shutting down`).
    ServerShuttingDown,
    /// The server disconnected the socket (`server namespace disconnect`).
    ServerNamespaceDisconnect,
    /// The client left the namespace (`client namespace disconnect`).
    ClientNamespaceDisconnect,
}

impl DisconnectReason {
    /// The reason as Node names it.
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::TransportClose => "transport close",
            DisconnectReason::TransportError => "transport error",
            DisconnectReason::PingTimeout => "ping timeout",
            DisconnectReason::ParseError => "parse error",
            DisconnectReason::ForcedClose => "forced close",
            DisconnectReason::ServerShuttingDown => "server shutting down",
            DisconnectReason::ServerNamespaceDisconnect => "server namespace disconnect",
            DisconnectReason::ClientNamespaceDisconnect => "client namespace disconnect",
        }
    }

    /// Whether a socket that left for this reason may recover its state
    /// (Node's `RECOVERABLE_DISCONNECT_REASONS`).
    pub fn is_recoverable(self) -> bool {
        matches!(
            self,
            DisconnectReason::TransportClose
                | DisconnectReason::TransportError
                | DisconnectReason::PingTimeout
                | DisconnectReason::ForcedClose
                | DisconnectReason::ServerShuttingDown
        )
    }
}

impl From<CloseReason> for DisconnectReason {
    fn from(reason: CloseReason) -> Self {
        match reason {
            CloseReason::TransportClose => DisconnectReason::TransportClose,
            CloseReason::TransportError => DisconnectReason::TransportError,
            CloseReason::PingTimeout => DisconnectReason::PingTimeout,
            CloseReason::ParseError => DisconnectReason::ParseError,
            CloseReason::ForcedClose => DisconnectReason::ForcedClose,
            CloseReason::ServerShuttingDown => DisconnectReason::ServerShuttingDown,
        }
    }
}

impl std::fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
