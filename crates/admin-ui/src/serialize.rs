//! Sockets as the UI reads them (Node's `serialize`: `SerializedSocket` of
//! `lib/typed-events.ts`), and the timestamps events carry.
//!
//! The client id and transport travel in the socket's data under `_admin`
//! (`{clientId, transport}`), as Node's `instrument()` puts them there: so
//! `fetch_sockets` brings them from other workers and nodes, Node servers
//! of a mixed Redis fleet included, and the UI never sees `_admin` itself.

use std::time::{SystemTime, UNIX_EPOCH};

use iocluster_socketio::{RemoteSocket, Socket, SocketHandshake};
use serde_json::{Map, Value, json};

/// The key of the socket data the UI's details travel under.
pub(crate) const ADMIN_KEY: &str = "_admin";

/// How much of the engine session id is shown as the client id. Node shows
/// the first 12 of its 20 characters ("quite sensitive": the whole id would
/// let a reader take the session over). Ours start with 11 characters that
/// name the node and worker, the same for every client of a worker: the 12
/// shown are taken from the random part, which leaves 48 of its 120 bits
/// unknown, as Node's leaves 48 of its 120.
const CLIENT_ID_RANGE: std::ops::Range<usize> = 11..23;

/// The client id the UI groups a client's sockets by.
pub(crate) fn client_id(session_id: &str) -> String {
    session_id
        .get(CLIENT_ID_RANGE)
        .or_else(|| session_id.get(..12))
        .unwrap_or(session_id)
        .to_owned()
}

/// `{clientId, transport}` of a socket of this server, now.
pub(crate) fn admin_details(socket: &Socket) -> Value {
    json!({
        "clientId": client_id(socket.session().id().as_str()),
        "transport": socket.session().transport().as_str(),
    })
}

/// A socket of this server: its details read live.
pub(crate) fn local(socket: &Socket) -> Value {
    let details = admin_details(socket);
    serialize(
        socket.id(),
        socket.namespace().name(),
        &socket.handshake(),
        socket.rooms(),
        &socket.data(),
        Some(&details),
    )
}

/// A socket `fetch_sockets` returned, from any server.
pub(crate) fn remote(socket: &RemoteSocket, nsp: &str) -> Value {
    serialize(
        socket.id(),
        nsp,
        socket.handshake(),
        socket.rooms().to_vec(),
        socket.data(),
        None,
    )
}

fn serialize(
    id: &str,
    nsp: &str,
    handshake: &SocketHandshake,
    rooms: Vec<String>,
    data: &Value,
    live: Option<&Value>,
) -> Value {
    let details = live.or_else(|| data.get(ADMIN_KEY));
    let field = |name: &str| details.and_then(|d| d.get(name)).cloned();
    let headers = &handshake.headers;
    let address = headers
        .get("cf-connecting-ip")
        .or_else(|| headers.get("x-forwarded-for"))
        .unwrap_or(&handshake.address);
    json!({
        "id": id,
        "clientId": field("clientId"),
        "transport": field("transport"),
        "nsp": nsp,
        "data": without_admin(data),
        // The handshake without `auth`: it holds the password of a login.
        "handshake": {
            "address": address,
            "headers": headers,
            "query": handshake.query,
            "issued": handshake.issued,
            "secure": handshake.secure,
            "time": handshake.time,
            "url": handshake.url,
            "xdomain": handshake.xdomain,
        },
        "rooms": rooms,
    })
}

/// The socket's data as the UI shows it: without `_admin`.
pub(crate) fn without_admin(data: &Value) -> Value {
    match data {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(key, _)| *key != ADMIN_KEY)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Map<_, _>>(),
        ),
        Value::Null => Value::Object(Map::new()),
        other => other.clone(),
    }
}

/// `data` with `_admin` set to `details`; data that is not an object
/// (set so by the app) is left alone.
pub(crate) fn with_admin(data: Value, details: Value) -> Option<Value> {
    let mut map = match data {
        Value::Object(map) => map,
        Value::Null => Map::new(),
        _ => return None,
    };
    map.insert(ADMIN_KEY.to_owned(), details);
    Some(Value::Object(map))
}

/// A time as JavaScript's `Date.prototype.toJSON` writes it (what Node's
/// `new Date()` arguments become on the wire): `2026-12-04T13:43:40.123Z`.
pub(crate) fn timestamp(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_millis()
    )
}

/// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for days after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn timestamp_is_written_as_javascript_dates_are() {
        let at = |ms: u64| timestamp(UNIX_EPOCH + Duration::from_millis(ms));
        assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(at(1_796_395_420_456), "2026-12-04T14:43:40.456Z");
    }

    #[test]
    fn client_id_skips_the_worker_prefix() {
        let sid = "AAAAAAAAAAAbcdefghijklmnopqrstu";
        assert_eq!(client_id(sid), "bcdefghijklm");
        assert_eq!(client_id("short"), "short");
        assert_eq!(client_id("abcdefghijklmn"), "abcdefghijkl");
    }

    #[test]
    fn admin_details_are_hidden_from_the_data() {
        let data = with_admin(json!({"user": 1}), json!({"clientId": "x"})).unwrap();
        assert_eq!(data[ADMIN_KEY]["clientId"], "x");
        assert_eq!(without_admin(&data), json!({"user": 1}));
        assert_eq!(without_admin(&Value::Null), json!({}));
        assert_eq!(with_admin(json!(3), json!({})), None);
    }
}
