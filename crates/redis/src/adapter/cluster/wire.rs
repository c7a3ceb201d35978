//! The messages of Node's `ClusterAdapter` (socket.io-adapter 2.5), shared
//! by the adapters built on it: `{uid, nsp, type, data}` with the types of
//! `MessageType` and the `data` shapes of `cluster-adapter.ts`. How a
//! message travels is each adapter's own: the sharded adapter publishes the
//! whole message as JSON or msgpack (`sharded/wire.rs`), the streams
//! adapter writes it as the fields of a stream entry (`streams/entry.rs`).
//! Keys are written in Node's order, so the bytes are Node's.

use bytes::Bytes;
use iocluster_socketio::adapter::{BroadcastOptions, SocketInfo};
use serde_json::Value;

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
    pub(crate) fn from_u64(n: u64) -> Option<MessageType> {
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
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) {
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

    pub(crate) fn write_msgpack(&self, w: &mut Writer, attachments: &[Bytes]) {
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

/// A broadcast's `data`: `{packet, requestId, opts}` in Node's order,
/// `requestId` only when it waits for acks.
pub(crate) fn broadcast<'a>(
    data: &'a Value,
    request_id: Option<&'a str>,
    opts: &'a BroadcastOptions,
    flags: &'a [(&'static str, Value)],
) -> Item<'a> {
    let mut entries = vec![("packet", packet(data))];
    if let Some(id) = request_id {
        entries.push(("requestId", Item::Str(id)));
    }
    entries.push(("opts", self::opts(&opts.rooms, &opts.except, flags)));
    Item::Map(entries)
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

/// `{requestId, packet}`; no `packet` when the reply had no argument (as
/// `JSON.stringify` drops `undefined`).
pub(crate) fn reply_data<'a>(id: &'a str, packet: Option<&'a Value>) -> Item<'a> {
    let mut entries = vec![("requestId", Item::Str(id))];
    if let Some(packet) = packet {
        entries.push(("packet", Item::Json(packet)));
    }
    Item::Map(entries)
}

/// `data.opts` as our options.
pub(crate) fn wire_opts(data: &Value) -> BroadcastOptions {
    crate::wire::opts_of(data.get("opts"))
}

/// `data.rooms` of a join or leave.
pub(crate) fn rooms(data: &Value) -> Vec<String> {
    data.get("rooms")
        .and_then(Value::as_array)
        .map(|rooms| rooms.iter().filter_map(crate::wire::room_name).collect())
        .unwrap_or_default()
}

/// The sockets of a `FETCH_SOCKETS_RESPONSE`.
pub(crate) fn fetched_sockets(data: &Value) -> impl Iterator<Item = SocketInfo> + '_ {
    data.get("sockets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(crate::adapter::remote::socket_info)
}
