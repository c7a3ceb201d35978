//! How the sharded adapter publishes `ClusterAdapter` messages
//! (`createShardedAdapter`): the whole `{type, data, uid, nsp}` in JSON, or
//! in msgpack (notepack) when `data` carries binary.

use bytes::Bytes;
use serde_json::Value;

use crate::adapter::cluster::wire::{Incoming, Item, MessageType};
use crate::error::Error;
use crate::msgpack::Writer;

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
    use crate::adapter::cluster::wire::{opts, packet};
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
