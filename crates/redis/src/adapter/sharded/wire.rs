//! The messages of Node's `ClusterAdapter` (socket.io-adapter 2.5), which
//! `createShardedAdapter` publishes: `{type, data, uid, nsp}`, in JSON, or
//! in msgpack (notepack) when `data` carries binary. Keys are written in
//! Node's order, so the bytes are Node's.

use bytes::Bytes;
use serde_json::Value;

use crate::error::Error;
use crate::msgpack::Writer;

/// The message types, numbered as in Node (`MessageType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum MessageType {
    InitialHeartbeat = 1,
    Heartbeat = 2,
    Broadcast = 3,
    SocketsJoin = 4,
    SocketsLeave = 5,
    DisconnectSockets = 6,
    FetchSockets = 7,
    FetchSocketsResponse = 8,
    ServerSideEmit = 9,
    ServerSideEmitResponse = 10,
    BroadcastClientCount = 11,
    BroadcastAck = 12,
    AdapterClose = 13,
}

impl MessageType {
    fn from_u64(n: u64) -> Option<MessageType> {
        use MessageType::*;
        Some(match n {
            1 => InitialHeartbeat,
            2 => Heartbeat,
            3 => Broadcast,
            4 => SocketsJoin,
            5 => SocketsLeave,
            6 => DisconnectSockets,
            7 => FetchSockets,
            8 => FetchSocketsResponse,
            9 => ServerSideEmit,
            10 => ServerSideEmitResponse,
            11 => BroadcastClientCount,
            12 => BroadcastAck,
            13 => AdapterClose,
            _ => return None,
        })
    }

    /// Whether the message answers a request (Node's `onResponse`).
    pub(crate) fn is_response(self) -> bool {
        matches!(
            self,
            MessageType::FetchSocketsResponse
                | MessageType::ServerSideEmitResponse
                | MessageType::BroadcastClientCount
                | MessageType::BroadcastAck
        )
    }
}

/// A part of a message, written as JSON or msgpack.
#[derive(Debug)]
pub(crate) enum Item<'a> {
    Str(&'a str),
    UInt(u64),
    Bool(bool),
    /// A JSON value; binary values as placeholders of the attachments.
    Json(&'a Value),
    Strs(&'a [String]),
    /// Broadcast flags, only those set, in order.
    Flags(&'a [(&'static str, Value)]),
    Map(Vec<(&'static str, Item<'a>)>),
}

impl Item<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        // Writing to memory cannot fail.
        match self {
            Item::Str(s) => {
                let _ = serde_json::to_writer(&mut *out, s);
            }
            Item::UInt(n) => out.extend_from_slice(n.to_string().as_bytes()),
            Item::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Item::Json(value) => {
                let _ = serde_json::to_writer(&mut *out, value);
            }
            Item::Strs(items) => {
                let _ = serde_json::to_writer(&mut *out, items);
            }
            Item::Flags(flags) => {
                out.push(b'{');
                for (i, (name, value)) in flags.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    let _ = serde_json::to_writer(&mut *out, name);
                    out.push(b':');
                    let _ = serde_json::to_writer(&mut *out, value);
                }
                out.push(b'}');
            }
            Item::Map(entries) => {
                out.push(b'{');
                for (i, (key, item)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    let _ = serde_json::to_writer(&mut *out, key);
                    out.push(b':');
                    item.write_json(out);
                }
                out.push(b'}');
            }
        }
    }

    fn write_msgpack(&self, w: &mut Writer, attachments: &[Bytes]) {
        match self {
            Item::Str(s) => {
                w.str(s);
            }
            Item::UInt(n) => {
                w.uint(*n);
            }
            Item::Bool(b) => {
                w.bool(*b);
            }
            Item::Json(value) => {
                w.value(value, attachments);
            }
            Item::Strs(items) => {
                w.array(items.len());
                for item in items.iter() {
                    w.str(item);
                }
            }
            Item::Flags(flags) => {
                w.map(flags.len());
                for (name, value) in flags.iter() {
                    w.str(name).value(value, &[]);
                }
            }
            Item::Map(entries) => {
                w.map(entries.len());
                for (key, item) in entries {
                    w.str(key);
                    item.write_msgpack(w, attachments);
                }
            }
        }
    }
}

/// `{type, data, uid, nsp}`: msgpack when `attachments` is not empty (the
/// data carries binary), JSON otherwise, as Node's sharded adapter chooses.
pub(crate) fn encode(
    kind: MessageType,
    data: Option<Item<'_>>,
    uid: &str,
    nsp: &str,
    attachments: &[Bytes],
) -> Vec<u8> {
    let mut entries = vec![("type", Item::UInt(kind as u64))];
    if let Some(data) = data {
        entries.push(("data", data));
    }
    entries.push(("uid", Item::Str(uid)));
    entries.push(("nsp", Item::Str(nsp)));
    let message = Item::Map(entries);
    if attachments.is_empty() {
        let mut out = Vec::with_capacity(128);
        message.write_json(&mut out);
        out
    } else {
        let mut w = Writer::default();
        message.write_msgpack(&mut w, attachments);
        w.into_bytes()
    }
}

/// `{rooms, except, flags}`.
pub(crate) fn opts<'a>(
    rooms: &'a [String],
    except: &'a [String],
    flags: &'a [(&'static str, Value)],
) -> Item<'a> {
    Item::Map(vec![
        ("rooms", Item::Strs(rooms)),
        ("except", Item::Strs(except)),
        ("flags", Item::Flags(flags)),
    ])
}

/// An event packet: `{type: 2, data}`. socket.io 4.8 publishes it before
/// its in-memory adapter sets `nsp` (the message says the namespace).
pub(crate) fn packet(data: &Value) -> Item<'_> {
    Item::Map(vec![("type", Item::UInt(2)), ("data", Item::Json(data))])
}

/// A message of another server, as read.
#[derive(Debug)]
pub(crate) struct Incoming {
    pub(crate) kind: MessageType,
    pub(crate) uid: String,
    pub(crate) nsp: String,
    /// `data`, `Null` when absent; binary values as placeholders.
    pub(crate) data: Value,
    pub(crate) attachments: Vec<Bytes>,
}

impl Incoming {
    /// A string field of `data`.
    pub(crate) fn str(&self, key: &str) -> Option<&str> {
        self.data.get(key).and_then(Value::as_str)
    }
}

/// Reads a message: JSON when it starts with `{`, else msgpack (as Node
/// tells them apart).
pub(crate) fn decode(bytes: &Bytes) -> Result<Incoming, Error> {
    let (value, attachments) = crate::wire::decode_message(bytes)?;
    let Value::Object(mut map) = value else {
        return Err(Error::Malformed("message is not a map"));
    };
    let kind = map
        .get("type")
        .and_then(Value::as_u64)
        .and_then(MessageType::from_u64)
        .ok_or(Error::Malformed("unknown message type"))?;
    let text = |value: Option<Value>| match value {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    let uid = text(map.remove("uid")).ok_or(Error::Malformed("message without uid"))?;
    let nsp = text(map.remove("nsp")).ok_or(Error::Malformed("message without nsp"))?;
    let data = map.remove("data").unwrap_or(Value::Null);
    if !(data.is_object() || data.is_null()) {
        return Err(Error::Malformed("message data is not a map"));
    }
    Ok(Incoming {
        kind,
        uid,
        nsp,
        data,
        attachments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn broadcasts_without_binary_are_json_in_nodes_key_order() {
        let data = json!(["ev", 1]);
        let flags = vec![("volatile", Value::Bool(true))];
        let message = encode(
            MessageType::Broadcast,
            Some(Item::Map(vec![
                ("packet", packet(&data)),
                ("opts", opts(&["r".to_owned()], &[], &flags)),
            ])),
            "abc",
            "/",
            &[],
        );
        assert_eq!(
            String::from_utf8(message).unwrap(),
            r#"{"type":3,"data":{"packet":{"type":2,"data":["ev",1]},"opts":{"rooms":["r"],"except":[],"flags":{"volatile":true}}},"uid":"abc","nsp":"/"}"#
        );
    }

    #[test]
    fn messages_with_binary_are_msgpack_and_read_back() {
        let data = json!(["ev", {"_placeholder": true, "num": 0}]);
        let bin = [Bytes::from_static(&[1, 2, 3])];
        let message = encode(
            MessageType::ServerSideEmit,
            Some(Item::Map(vec![("packet", Item::Json(&data))])),
            "abc",
            "/x",
            &bin,
        );
        assert_eq!(message[0], 0x84, "a map of four entries");
        let incoming = decode(&Bytes::from(message)).unwrap();
        assert_eq!(incoming.kind, MessageType::ServerSideEmit);
        assert_eq!(
            (incoming.uid.as_str(), incoming.nsp.as_str()),
            ("abc", "/x")
        );
        assert_eq!(incoming.data, json!({"packet": data}));
        assert_eq!(incoming.attachments, bin);
    }

    #[test]
    fn heartbeats_have_no_data() {
        let message = encode(MessageType::InitialHeartbeat, None, "u", "/", &[]);
        assert_eq!(message, br#"{"type":1,"uid":"u","nsp":"/"}"#);
    }

    #[test]
    fn garbage_is_refused() {
        for bytes in [
            &b""[..],
            b"{",
            b"[]",
            br#"{"type":99,"uid":"u","nsp":"/"}"#,
            br#"{"type":3,"nsp":"/"}"#,
            br#"{"type":3,"uid":"u","nsp":"/","data":[1]}"#,
            &[0xc1],
        ] {
            assert!(decode(&Bytes::copy_from_slice(bytes)).is_err(), "{bytes:?}");
        }
    }
}
