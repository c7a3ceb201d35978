//! `ClusterAdapter` messages as stream entries, as Node's
//! `RedisStreamsAdapter.encode`/`decode` (@socket.io/redis-streams-adapter
//! 0.2, `lib/adapter.ts`) write and read them.
//!
//! An entry has the fields `uid`, `nsp`, `type` (the message type in
//! decimal: `"3"`) and, when the message has data, `data`: the data as JSON
//! text, or, when it carries binary (Node's `hasBinary`, for the types that
//! may), the data in MessagePack, base64-encoded. A reader tells them apart
//! as Node does: JSON when `data` starts with `{`.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use bytes::Bytes;
use fred::types::Value as RedisValue;
use serde_json::Value;

use super::id::StreamId;
use crate::adapter::cluster::wire::{Incoming, Item, MessageType};
use crate::error::Error;
use crate::msgpack::{self, Writer};

/// Base64 as Node's `Buffer` writes it (standard alphabet, padded) and
/// reads it (padding optional).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Writes a message as the fields of an `XADD`, in Node's order.
pub(crate) fn fields(
    kind: MessageType,
    data: Option<Item<'_>>,
    uid: &str,
    nsp: &str,
    attachments: &[Bytes],
) -> Vec<(&'static str, Bytes)> {
    let mut fields = Vec::with_capacity(4);
    fields.push(("uid", Bytes::copy_from_slice(uid.as_bytes())));
    fields.push(("nsp", Bytes::copy_from_slice(nsp.as_bytes())));
    fields.push(("type", Bytes::from((kind as u8).to_string())));
    if let Some(data) = data {
        fields.push(("data", encode_data(&data, attachments)));
    }
    fields
}

/// `data`: JSON, or base64 MessagePack when it carries binary.
fn encode_data(data: &Item<'_>, attachments: &[Bytes]) -> Bytes {
    if attachments.is_empty() {
        let mut out = Vec::with_capacity(128);
        data.write_json(&mut out);
        Bytes::from(out)
    } else {
        let mut w = Writer::default();
        data.write_msgpack(&mut w, attachments);
        Bytes::from(BASE64.encode(w.into_bytes()))
    }
}

/// Base64 MessagePack (sessions and binary data) as a value and its
/// attachments.
pub(crate) fn decode_base64_msgpack(text: &[u8]) -> Result<(Value, Vec<Bytes>), Error> {
    let bytes = BASE64
        .decode(text)
        .map_err(|_| Error::Malformed("data is neither JSON nor base64"))?;
    Ok(msgpack::decode(&bytes)?)
}

/// An entry as read from the stream: its id and its fields.
#[derive(Debug)]
pub(crate) struct RawEntry {
    pub(crate) id: StreamId,
    /// `(name, value)` pairs; `None` when Redis gave something else than
    /// pairs of strings (never, for entries anyone wrote with `XADD`).
    pub(crate) fields: Option<Vec<(Bytes, Bytes)>>,
}

impl RawEntry {
    /// The value of field `name` (the last one, when repeated, as Node's
    /// mapping of the field list to an object keeps it).
    pub(crate) fn field(&self, name: &str) -> Option<&Bytes> {
        self.fields
            .as_ref()?
            .iter()
            .rev()
            .find(|(key, _)| key.as_ref() == name.as_bytes())
            .map(|(_, value)| value)
    }
}

/// Reads an entry's fields into a message; malformed entries (garbage
/// written by anyone into the stream) are an error, never a panic.
pub(crate) fn decode(entry: &RawEntry) -> Result<Incoming, Error> {
    let text = |name: &'static str| -> Result<String, Error> {
        let value = entry
            .field(name)
            .ok_or(Error::Malformed("entry without uid, nsp or type"))?;
        String::from_utf8(value.to_vec()).map_err(|_| Error::Malformed("field is not UTF-8"))
    };
    let uid = text("uid")?;
    let nsp = text("nsp")?;
    let kind = text("type")?
        .parse::<u64>()
        .ok()
        .and_then(MessageType::from_u64)
        .ok_or(Error::Malformed("unknown message type"))?;
    let (data, attachments) = match entry.field("data") {
        // Node skips an empty `data` (`if (rawMessage.data)`).
        None => (Value::Null, Vec::new()),
        Some(data) if data.is_empty() => (Value::Null, Vec::new()),
        Some(data) if data.first() == Some(&b'{') => (serde_json::from_slice(data)?, Vec::new()),
        Some(data) => decode_base64_msgpack(data)?,
    };
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

/// The bytes of a bulk string.
fn bytes_of(value: RedisValue) -> Option<Bytes> {
    match value {
        RedisValue::Bytes(bytes) => Some(bytes),
        RedisValue::String(s) => Some(s.into_inner()),
        RedisValue::Integer(n) => Some(Bytes::from(n.to_string())),
        _ => None,
    }
}

/// An array (RESP2) or the values of a map (RESP3) as a list.
fn list_of(value: RedisValue) -> Option<Vec<RedisValue>> {
    match value {
        RedisValue::Array(items) => Some(items),
        _ => None,
    }
}

/// One `[id, [field, value, …]]` of an `XRANGE` or `XREAD` reply; none when
/// its id is unreadable.
fn entry_of(value: RedisValue) -> Option<RawEntry> {
    let mut parts = list_of(value)?.into_iter();
    let id = bytes_of(parts.next()?)?;
    let id = StreamId::parse(std::str::from_utf8(&id).ok()?)?;
    let fields = parts.next().and_then(list_of).and_then(|flat| {
        let mut pairs = Vec::with_capacity(flat.len() / 2);
        let mut flat = flat.into_iter();
        while let (Some(key), Some(value)) = (flat.next(), flat.next()) {
            pairs.push((bytes_of(key)?, bytes_of(value)?));
        }
        Some(pairs)
    });
    Some(RawEntry { id, fields })
}

/// The entries of an `XRANGE` (or `XREVRANGE`) reply, and how many could
/// not be read at all.
pub(crate) fn range_entries(reply: RedisValue) -> (Vec<RawEntry>, usize) {
    let mut unreadable = 0;
    let entries = list_of(reply)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|value| {
            let entry = entry_of(value);
            unreadable += usize::from(entry.is_none());
            entry
        })
        .collect();
    (entries, unreadable)
}

/// The entries of an `XREAD` reply on one stream (`nil` when the block
/// timed out), RESP2 `[[name, entries]]` or RESP3 `{name: entries}`.
pub(crate) fn read_entries(reply: RedisValue) -> (Vec<RawEntry>, usize) {
    let streams = match reply {
        RedisValue::Null => return (Vec::new(), 0),
        RedisValue::Map(map) => map.inner().into_values().collect(),
        RedisValue::Array(streams) => streams
            .into_iter()
            .filter_map(|stream| list_of(stream).and_then(|s| s.into_iter().nth(1)))
            .collect(),
        _ => Vec::new(),
    };
    let mut all = Vec::new();
    let mut unreadable = 0;
    for stream in streams {
        let (entries, bad) = range_entries(stream);
        all.extend(entries);
        unreadable += bad;
    }
    (all, unreadable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapter::cluster::wire::{opts, packet};
    use serde_json::json;

    fn raw(pairs: &[(&str, &[u8])]) -> RawEntry {
        RawEntry {
            id: StreamId::parse("1-0").unwrap(),
            fields: Some(
                pairs
                    .iter()
                    .map(|(k, v)| {
                        (
                            Bytes::copy_from_slice(k.as_bytes()),
                            Bytes::copy_from_slice(v),
                        )
                    })
                    .collect(),
            ),
        }
    }

    fn as_text(fields: &[(&'static str, Bytes)]) -> Vec<(&'static str, String)> {
        fields
            .iter()
            .map(|(k, v)| (*k, String::from_utf8(v.to_vec()).unwrap()))
            .collect()
    }

    #[test]
    fn broadcasts_are_uid_nsp_type_and_json_data_in_nodes_order() {
        let data = json!(["ev", 1]);
        let fields = fields(
            MessageType::Broadcast,
            Some(Item::Map(vec![
                ("packet", packet(&data)),
                ("opts", opts(&["r".to_owned()], &[], &[])),
            ])),
            "0123456789abcdef",
            "/",
            &[],
        );
        assert_eq!(
            as_text(&fields),
            vec![
                ("uid", "0123456789abcdef".to_owned()),
                ("nsp", "/".to_owned()),
                ("type", "3".to_owned()),
                ("data", r#"{"packet":{"type":2,"data":["ev",1]},"opts":{"rooms":["r"],"except":[],"flags":{}}}"#.to_owned()),
            ]
        );
    }

    #[test]
    fn heartbeats_have_no_data_field() {
        let fields = fields(MessageType::InitialHeartbeat, None, "u", "/", &[]);
        assert_eq!(
            as_text(&fields),
            vec![
                ("uid", "u".into()),
                ("nsp", "/".into()),
                ("type", "1".into())
            ]
        );
    }

    #[test]
    fn binary_data_is_base64_msgpack_and_reads_back() {
        let data = json!(["ev", {"_placeholder": true, "num": 0}]);
        let bin = [Bytes::from_static(&[1, 2, 3])];
        let fields = fields(
            MessageType::ServerSideEmit,
            Some(Item::Map(vec![("packet", Item::Json(&data))])),
            "u",
            "/x",
            &bin,
        );
        // {packet: ["ev", <bin 1 2 3>]} in msgpack, base64.
        assert_eq!(fields[3].1, Bytes::from_static(b"gaZwYWNrZXSSomV2xAMBAgM="));
        let pairs: Vec<(&str, &[u8])> = fields.iter().map(|(k, v)| (*k, v.as_ref())).collect();
        let incoming = decode(&raw(&pairs)).unwrap();
        assert_eq!(incoming.kind, MessageType::ServerSideEmit);
        assert_eq!((incoming.uid.as_str(), incoming.nsp.as_str()), ("u", "/x"));
        assert_eq!(incoming.data, json!({"packet": data}));
        assert_eq!(incoming.attachments, bin);
    }

    #[test]
    fn garbage_entries_are_errors() {
        for pairs in [
            vec![],
            vec![("foo", &b"bar"[..])],
            vec![("uid", &b"u"[..]), ("nsp", b"/")],
            vec![("uid", &b"u"[..]), ("nsp", b"/"), ("type", b"99")],
            vec![("uid", &b"u"[..]), ("nsp", b"/"), ("type", b"three")],
            vec![
                ("uid", &b"u"[..]),
                ("nsp", b"/"),
                ("type", b"3"),
                ("data", b"{not json"),
            ],
            vec![
                ("uid", &b"u"[..]),
                ("nsp", b"/"),
                ("type", b"3"),
                ("data", b"!!!"),
            ],
            vec![
                ("uid", &b"u"[..]),
                ("nsp", b"/"),
                ("type", b"3"),
                ("data", b"kA=="),
            ],
            vec![("uid", &b"\xff"[..]), ("nsp", b"/"), ("type", b"3")],
        ] {
            assert!(decode(&raw(&pairs)).is_err(), "{pairs:?}");
        }
        assert!(
            decode(&RawEntry {
                id: StreamId::default(),
                fields: None
            })
            .is_err()
        );
    }

    #[test]
    fn replies_with_unreadable_entries_keep_the_readable_ones() {
        let entry = |id: &str, fields: Vec<RedisValue>| {
            RedisValue::Array(vec![
                RedisValue::String(id.into()),
                RedisValue::Array(fields),
            ])
        };
        let reply = RedisValue::Array(vec![RedisValue::Array(vec![
            RedisValue::String("socket.io".into()),
            RedisValue::Array(vec![
                entry(
                    "1-1",
                    vec![
                        RedisValue::String("uid".into()),
                        RedisValue::String("u".into()),
                    ],
                ),
                entry("not-an-id", vec![]),
                RedisValue::Integer(3),
                entry("1-2", vec![RedisValue::Array(vec![]), RedisValue::Null]),
            ]),
        ])]);
        let (entries, unreadable) = read_entries(reply);
        assert_eq!(unreadable, 2);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].field("uid").map(|b| b.as_ref()), Some(&b"u"[..]));
        assert!(
            entries[1].fields.is_none(),
            "kept, to be counted and skipped"
        );
        assert_eq!(read_entries(RedisValue::Null).0.len(), 0);
    }
}
