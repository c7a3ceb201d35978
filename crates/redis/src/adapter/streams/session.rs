//! Sessions kept in Redis for connection state recovery, as Node's
//! `persistSession`/`restoreSession` keep them: under
//! `{session_key_prefix}{pid}` (`sio:session:<pid>`), the session
//! `{sid, pid, rooms, data}` in MessagePack, base64-encoded, with
//! `PX` = `maxDisconnectionDuration`; read back and deleted in one
//! `MULTI GET DEL EXEC`.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use iocluster_socketio::adapter::PersistedSession;
use serde_json::Value;

use super::entry;
use crate::msgpack::Writer;

/// The Redis key of session `pid`.
pub(crate) fn key(prefix: &str, pid: &str) -> String {
    format!("{prefix}{pid}")
}

/// A session as Node writes it: `{sid, pid, rooms, data}` (socket.io's
/// order), MessagePack, base64.
pub(crate) fn encode(session: &PersistedSession) -> String {
    use base64::Engine as _;
    let mut w = Writer::default();
    w.map(4)
        .str("sid")
        .str(&session.sid)
        .str("pid")
        .str(&session.pid)
        .str("rooms");
    w.array(session.rooms.len());
    for room in &session.rooms {
        w.str(room);
    }
    w.str("data").value(&session.data, &[]);
    base64::engine::general_purpose::STANDARD.encode(w.into_bytes())
}

/// A session Node (or we) wrote; none when it is not one.
pub(crate) fn decode(raw: &[u8]) -> Option<PersistedSession> {
    let (value, _) = entry::decode_base64_msgpack(raw).ok()?;
    let Value::Object(mut map) = value else {
        return None;
    };
    let text = |value: Option<Value>| match value {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    let rooms = match map.remove("rooms") {
        Some(Value::Array(rooms)) => rooms.iter().filter_map(crate::wire::room_name).collect(),
        _ => Vec::new(),
    };
    Some(PersistedSession {
        sid: text(map.remove("sid"))?,
        pid: text(map.remove("pid"))?,
        rooms,
        data: map.remove("data").unwrap_or(Value::Null),
    })
}

/// The bytes of a `GET` reply.
pub(crate) fn bytes_of(value: fred::types::Value) -> Option<Bytes> {
    match value {
        fred::types::Value::Bytes(bytes) => Some(bytes),
        fred::types::Value::String(s) => Some(s.into_inner()),
        _ => None,
    }
}

/// The connected sockets' sessions this adapter keeps in Redis (with
/// `persist_connected_sessions`), by pid, to refresh their expiry.
#[derive(Debug, Default)]
pub(crate) struct Connected(Mutex<HashMap<String, PersistedSession>>);

impl Connected {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, PersistedSession>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn track(&self, session: &PersistedSession) {
        self.lock().insert(session.pid.clone(), session.clone());
    }

    /// Forgets `pid`; whether it was tracked.
    pub(crate) fn untrack(&self, pid: &str) -> bool {
        self.lock().remove(pid).is_some()
    }

    pub(crate) fn all(&self) -> Vec<PersistedSession> {
        self.lock().values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sessions_are_base64_msgpack_in_socket_ios_key_order() {
        let session = PersistedSession {
            sid: "s".into(),
            pid: "p".into(),
            rooms: vec!["s".into(), "r".into()],
            data: json!({"n": 1}),
        };
        let encoded = encode(&session);
        // {sid: "s", pid: "p", rooms: ["s", "r"], data: {n: 1}}, as
        // @msgpack/msgpack writes it.
        assert_eq!(encoded, "hKNzaWShc6NwaWShcKVyb29tc5Khc6FypGRhdGGBoW4B");
        assert_eq!(decode(encoded.as_bytes()), Some(session));
    }

    #[test]
    fn garbage_is_no_session() {
        for raw in [&b""[..], b"!!", b"kA==", b"gaNzaWSh"] {
            assert_eq!(decode(raw), None, "{raw:?}");
        }
    }
}
