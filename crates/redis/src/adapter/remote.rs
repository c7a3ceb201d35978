//! Sockets of other servers as Node describes them in `REMOTE_FETCH`
//! responses, read leniently (Node's headers and query values may be
//! arrays).

use std::collections::BTreeMap;

use iocluster_socketio::SocketHandshake;
use iocluster_socketio::adapter::SocketInfo;
use serde_json::{Map, Value};

/// A string as Node would print it; arrays joined with `, `.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(", "),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn strings(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_object)
        .map(|map| map.iter().map(|(k, v)| (k.clone(), text(v))).collect())
        .unwrap_or_default()
}

fn handshake_of(value: Option<&Value>) -> SocketHandshake {
    let empty = Map::new();
    let map = value.and_then(Value::as_object).unwrap_or(&empty);
    let field = |name: &str| map.get(name);
    SocketHandshake {
        headers: strings(field("headers")),
        time: field("time").map(text).unwrap_or_default(),
        address: field("address").map(text).unwrap_or_default(),
        xdomain: field("xdomain").and_then(Value::as_bool).unwrap_or(false),
        secure: field("secure").and_then(Value::as_bool).unwrap_or(false),
        issued: field("issued")
            .and_then(|v| v.as_u64().or_else(|| v.as_f64().map(|f| f as u64)))
            .unwrap_or(0),
        url: field("url").map(text).unwrap_or_default(),
        query: strings(field("query")),
        auth: field("auth")
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new())),
    }
}

/// A socket of another server; none without an id.
pub(crate) fn socket_info(value: &Value) -> Option<SocketInfo> {
    let id = value.get("id")?.as_str()?.to_owned();
    let rooms = value
        .get("rooms")
        .and_then(Value::as_array)
        .map(|rooms| rooms.iter().filter_map(crate::wire::room_name).collect())
        .unwrap_or_default();
    Some(SocketInfo {
        id,
        handshake: handshake_of(value.get("handshake")),
        rooms,
        data: value.get("data").cloned().unwrap_or(Value::Null),
    })
}
