//! The Redis channel names of a namespace, as @socket.io/redis-adapter
//! names them.

/// The channels of one namespace under one key prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Channels {
    /// `{key}#{nsp}#`: broadcasts (`…{room}#` for one-room broadcasts).
    pub(crate) broadcast: String,
    /// `{key}-request#{nsp}#`: requests between servers.
    pub(crate) request: String,
    /// `{key}-response#{nsp}#`: responses.
    pub(crate) response: String,
}

impl Channels {
    pub(crate) fn new(key: &str, nsp: &str) -> Self {
        Channels {
            broadcast: format!("{key}#{nsp}#"),
            request: format!("{key}-request#{nsp}#"),
            response: format!("{key}-response#{nsp}#"),
        }
    }

    /// Where a broadcast to `rooms` is published: the room's own channel
    /// when there is exactly one room (whatever `except` says, as Node).
    pub(crate) fn broadcast_to(&self, rooms: &[String]) -> String {
        match rooms {
            [room] => format!("{}{room}#", self.broadcast),
            _ => self.broadcast.clone(),
        }
    }

    /// `{key}-response#{nsp}#{uid}#`: responses for one server only.
    pub(crate) fn specific_response(&self, uid: &str) -> String {
        format!("{}{uid}#", self.response)
    }
}
