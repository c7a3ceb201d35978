//! The messages of @socket.io/redis-adapter and @socket.io/redis-emitter:
//! broadcasts in msgpack (`[uid, packet, opts]`), requests and responses
//! in JSON (except `BROADCAST` and `BROADCAST_ACK`, in msgpack because
//! they carry packets). Key order is Node's, so the bytes are Node's.

use bytes::Bytes;
use iocluster_socketio::adapter::{BroadcastFlags, BroadcastOptions};
use iocluster_socketio::parser::{Packet, PacketType};
use iocluster_socketio::placeholder_num;
use serde::Serialize;
use serde_json::Value;

use crate::error::Error;
use crate::msgpack::{self, Writer};

/// The request types, numbered as in Node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum RequestType {
    Sockets = 0,
    AllRooms = 1,
    RemoteJoin = 2,
    RemoteLeave = 3,
    RemoteDisconnect = 4,
    RemoteFetch = 5,
    ServerSideEmit = 6,
    Broadcast = 7,
    BroadcastClientCount = 8,
    BroadcastAck = 9,
}

impl RequestType {
    pub(crate) fn from_value(value: &Value) -> Option<RequestType> {
        use RequestType::*;
        Some(match value.as_u64()? {
            0 => Sockets,
            1 => AllRooms,
            2 => RemoteJoin,
            3 => RemoteLeave,
            4 => RemoteDisconnect,
            5 => RemoteFetch,
            6 => ServerSideEmit,
            7 => Broadcast,
            8 => BroadcastClientCount,
            9 => BroadcastAck,
            _ => return None,
        })
    }
}

/// The order Node writes the keys of a broadcast's options in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OptsOrder {
    /// The adapter: `rooms`, `except`, `flags`.
    Adapter,
    /// The emitter: `rooms`, `flags`, `except`.
    Emitter,
}

/// A broadcast's flags as Node writes them: only those set, in order.
pub(crate) type WireFlags = Vec<(&'static str, Value)>;

/// The flags a broadcast of ours publishes.
pub(crate) fn adapter_flags(flags: &BroadcastFlags) -> WireFlags {
    let mut wire = WireFlags::new();
    if flags.volatile {
        wire.push(("volatile", Value::Bool(true)));
    }
    if let Some(timeout) = flags.timeout {
        wire.push(("timeout", Value::from(timeout)));
    }
    wire
}

/// An event packet as Node's adapter publishes it: `{type, data, nsp}`,
/// binary values inline.
fn write_packet(w: &mut Writer, nsp: &str, data: &Value, attachments: &[Bytes]) {
    w.map(3).str("type").uint(2).str("data");
    w.value(data, attachments);
    w.str("nsp").str(nsp);
}

fn write_rooms(w: &mut Writer, rooms: &[String]) {
    w.array(rooms.len());
    for room in rooms {
        w.str(room);
    }
}

fn write_opts(
    w: &mut Writer,
    rooms: &[String],
    except: &[String],
    flags: &[(&'static str, Value)],
    order: OptsOrder,
) {
    w.map(3).str("rooms");
    write_rooms(w, rooms);
    let write_flags = |w: &mut Writer| {
        w.str("flags").map(flags.len());
        for (name, value) in flags {
            w.str(name).value(value, &[]);
        }
    };
    match order {
        OptsOrder::Adapter => {
            w.str("except");
            write_rooms(w, except);
            write_flags(w);
        }
        OptsOrder::Emitter => {
            write_flags(w);
            w.str("except");
            write_rooms(w, except);
        }
    }
}

/// What a broadcast is made of.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BroadcastParts<'a> {
    pub(crate) nsp: &'a str,
    /// The event name then the arguments, binary values as placeholders.
    pub(crate) data: &'a Value,
    pub(crate) attachments: &'a [Bytes],
    pub(crate) rooms: &'a [String],
    pub(crate) except: &'a [String],
    pub(crate) flags: &'a [(&'static str, Value)],
}

impl<'a> BroadcastParts<'a> {
    /// The parts of `packet` (its `data`: event and arguments) broadcast
    /// with `opts` and their wire `flags`.
    pub(crate) fn new(
        nsp: &'a str,
        data: &'a Value,
        packet: &'a Packet,
        opts: &'a BroadcastOptions,
        flags: &'a [(&'static str, Value)],
    ) -> Self {
        BroadcastParts {
            nsp,
            data,
            attachments: &packet.attachments,
            rooms: &opts.rooms,
            except: &opts.except,
            flags,
        }
    }
}

/// `[uid, packet, opts]`, the message of a broadcast.
pub(crate) fn broadcast_message(
    uid: &str,
    parts: &BroadcastParts<'_>,
    order: OptsOrder,
) -> Vec<u8> {
    let mut w = Writer::default();
    w.array(3).str(uid);
    write_packet(&mut w, parts.nsp, parts.data, parts.attachments);
    write_opts(&mut w, parts.rooms, parts.except, parts.flags, order);
    w.into_bytes()
}

/// The `BROADCAST` request of a broadcast with acks.
pub(crate) fn broadcast_request(
    uid: &str,
    request_id: &str,
    parts: &BroadcastParts<'_>,
) -> Vec<u8> {
    let mut w = Writer::default();
    w.map(5)
        .str("uid")
        .str(uid)
        .str("requestId")
        .str(request_id);
    w.str("type")
        .uint(RequestType::Broadcast as u64)
        .str("packet");
    write_packet(&mut w, parts.nsp, parts.data, parts.attachments);
    w.str("opts");
    write_opts(
        &mut w,
        parts.rooms,
        parts.except,
        parts.flags,
        OptsOrder::Adapter,
    );
    w.into_bytes()
}

/// The `BROADCAST_ACK` response carrying one client's reply (its first
/// argument, as Node's adapter forwards; none when it replied nothing).
pub(crate) fn broadcast_ack(
    request_id: &str,
    reply: Option<&Value>,
    attachments: &[Bytes],
) -> Vec<u8> {
    let mut w = Writer::default();
    w.map(if reply.is_some() { 3 } else { 2 });
    w.str("type").uint(RequestType::BroadcastAck as u64);
    w.str("requestId").str(request_id);
    if let Some(reply) = reply {
        w.str("packet").value(reply, attachments);
    }
    w.into_bytes()
}

/// A broadcast received from another server or an emitter.
#[derive(Debug)]
pub(crate) struct IncomingBroadcast {
    pub(crate) uid: String,
    pub(crate) packet: Packet,
    pub(crate) opts: BroadcastOptions,
}

fn rooms_of(value: Option<&Value>) -> Vec<String> {
    let Some(Value::Array(items)) = value else {
        return Vec::new();
    };
    items.iter().filter_map(room_name).collect()
}

/// A room as a string (Node allows numbers).
pub(crate) fn room_name(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `{rooms, except, flags}` as our options.
pub(crate) fn opts_of(value: Option<&Value>) -> BroadcastOptions {
    let flags = value.and_then(|v| v.get("flags"));
    BroadcastOptions {
        rooms: rooms_of(value.and_then(|v| v.get("rooms"))),
        except: rooms_of(value.and_then(|v| v.get("except"))),
        flags: BroadcastFlags {
            local: false,
            volatile: flags
                .and_then(|f| f.get("volatile"))
                .and_then(Value::as_bool)
                .unwrap_or(false),
            timeout: flags.and_then(|f| f.get("timeout")).and_then(Value::as_u64),
        },
    }
}

/// An event packet from its msgpack form (`nsp` defaults to `/`).
pub(crate) fn packet_of(value: Value, attachments: Vec<Bytes>) -> Result<Packet, Error> {
    let Value::Object(mut map) = value else {
        return Err(Error::Malformed("packet is not a map"));
    };
    match map.get("type").and_then(Value::as_u64) {
        Some(2) | Some(5) => {}
        _ => return Err(Error::Malformed("packet is not an event")),
    }
    let nsp = match map.remove("nsp") {
        Some(Value::String(nsp)) => nsp,
        _ => "/".to_owned(),
    };
    let data = match map.remove("data") {
        Some(Value::Array(data)) if !data.is_empty() => Value::Array(data),
        _ => return Err(Error::Malformed("event packet without data")),
    };
    Ok(Packet {
        kind: PacketType::Event,
        nsp,
        id: None,
        data: Some(data),
        attachments,
    })
}

/// Reads a broadcast message.
pub(crate) fn decode_broadcast(bytes: &Bytes) -> Result<IncomingBroadcast, Error> {
    let (value, attachments) = msgpack::decode_bytes(bytes)?;
    let Value::Array(mut items) = value else {
        return Err(Error::Malformed("broadcast is not an array"));
    };
    if items.len() < 3 {
        return Err(Error::Malformed("broadcast has fewer than 3 items"));
    }
    let opts = opts_of(items.get(2));
    let packet = packet_of(std::mem::take(&mut items[1]), attachments)?;
    let uid = match &items[0] {
        Value::String(uid) => uid.clone(),
        _ => String::new(),
    };
    Ok(IncomingBroadcast { uid, packet, opts })
}

/// A request or response: JSON when it starts with `{`, else msgpack (as
/// Node tells them apart).
pub(crate) fn decode_message(bytes: &Bytes) -> Result<(Value, Vec<Bytes>), Error> {
    if bytes.first() == Some(&b'{') {
        Ok((serde_json::from_slice(bytes)?, Vec::new()))
    } else {
        Ok(msgpack::decode_bytes(bytes)?)
    }
}

/// A JSON value as `JSON.stringify` writes what it stands for: binary
/// values as Node `Buffer`s (`{"type":"Buffer","data":[…]}`).
pub(crate) fn json_with_buffers(value: &Value, attachments: &[Bytes]) -> Value {
    match value {
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| json_with_buffers(item, attachments))
                .collect(),
        ),
        Value::Object(map) => match placeholder_num(value).and_then(|n| attachments.get(n)) {
            Some(data) => serde_json::json!({
                "type": "Buffer",
                "data": data.iter().map(|b| Value::from(*b)).collect::<Vec<_>>(),
            }),
            None => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), json_with_buffers(v, attachments)))
                    .collect(),
            ),
        },
        other => other.clone(),
    }
}

/// `{rooms, except}` of a JSON request.
#[derive(Debug, Serialize)]
pub(crate) struct RequestOpts<'a> {
    pub(crate) rooms: &'a [String],
    pub(crate) except: &'a [String],
}

/// `REMOTE_JOIN` / `REMOTE_LEAVE` with options (the emitter sends no uid).
#[derive(Debug, Serialize)]
pub(crate) struct RoomsRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) uid: Option<&'a str>,
    #[serde(rename = "type")]
    pub(crate) kind: u8,
    pub(crate) opts: RequestOpts<'a>,
    pub(crate) rooms: &'a [String],
}

/// `REMOTE_DISCONNECT` with options.
#[derive(Debug, Serialize)]
pub(crate) struct DisconnectRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) uid: Option<&'a str>,
    #[serde(rename = "type")]
    pub(crate) kind: u8,
    pub(crate) opts: RequestOpts<'a>,
    pub(crate) close: bool,
}

/// `SERVER_SIDE_EMIT`: `requestId` only when acks are wanted.
#[derive(Debug, Serialize)]
pub(crate) struct ServerSideEmitRequest<'a> {
    pub(crate) uid: &'a str,
    #[serde(rename = "requestId", skip_serializing_if = "Option::is_none")]
    pub(crate) request_id: Option<&'a str>,
    #[serde(rename = "type")]
    pub(crate) kind: u8,
    pub(crate) data: Value,
}

/// `REMOTE_FETCH`.
#[derive(Debug, Serialize)]
pub(crate) struct FetchRequest<'a> {
    pub(crate) uid: &'a str,
    #[serde(rename = "requestId")]
    pub(crate) request_id: &'a str,
    #[serde(rename = "type")]
    pub(crate) kind: u8,
    pub(crate) opts: RequestOpts<'a>,
}

/// The response to `SERVER_SIDE_EMIT`, `BROADCAST_CLIENT_COUNT`:
/// `{type, requestId, …}`.
#[derive(Debug, Serialize)]
pub(crate) struct TypedResponse<'a> {
    #[serde(rename = "type")]
    pub(crate) kind: u8,
    #[serde(rename = "requestId")]
    pub(crate) request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) data: Option<Value>,
    #[serde(rename = "clientCount", skip_serializing_if = "Option::is_none")]
    pub(crate) client_count: Option<usize>,
}

/// The responses without a type: `{requestId, sockets|rooms}` or
/// `{requestId}`.
#[derive(Debug, Serialize)]
pub(crate) struct PlainResponse<'a, T: Serialize> {
    #[serde(rename = "requestId")]
    pub(crate) request_id: &'a str,
    #[serde(flatten)]
    pub(crate) body: T,
}
