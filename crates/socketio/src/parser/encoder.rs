//! Encoding a packet as the Engine.IO messages that carry it: one text
//! message, then one binary message per attachment.

use std::fmt::Write as _;

use bytes::Bytes;
use iocluster_engineio::{Message, Text};
use serde_json::Value;

use super::{Packet, PacketType};

/// An encoded packet, ready to send to any number of sessions.
///
/// Cloning is cheap: the text and the attachments are shared buffers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The text message: the packet header and its JSON payload.
    pub text: Text,
    /// The binary messages to send right after the text, in order.
    pub attachments: Vec<Bytes>,
}

impl Encoded {
    /// The Engine.IO messages to send, in order: the text, then each
    /// attachment as a binary message. The messages share this packet's
    /// buffers.
    ///
    /// ```
    /// use iocluster_engineio::Message;
    /// use iocluster_socketio::parser::{Packet, PacketType, encode};
    ///
    /// let packet = Packet {
    ///     kind: PacketType::Event,
    ///     nsp: "/".into(),
    ///     id: None,
    ///     data: Some(serde_json::json!(["file", {"_placeholder": true, "num": 0}])),
    ///     attachments: vec![bytes::Bytes::from_static(b"\x01\x02")],
    /// };
    /// let messages: Vec<Message> = encode(&packet).messages().collect();
    /// assert_eq!(messages, [
    ///     Message::text(r#"51-["file",{"_placeholder":true,"num":0}]"#),
    ///     Message::binary(&b"\x01\x02"[..]),
    /// ]);
    /// ```
    pub fn messages(&self) -> impl ExactSizeIterator<Item = Message> + '_ {
        Messages {
            text: Some(&self.text),
            attachments: self.attachments.iter(),
        }
    }
}

/// The iterator behind [`Encoded::messages`].
struct Messages<'a> {
    text: Option<&'a Text>,
    attachments: std::slice::Iter<'a, Bytes>,
}

impl Iterator for Messages<'_> {
    type Item = Message;

    fn next(&mut self) -> Option<Message> {
        match self.text.take() {
            Some(text) => Some(Message::Text(text.clone())),
            None => self.attachments.next().cloned().map(Message::Binary),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let len = usize::from(self.text.is_some()) + self.attachments.len();
        (len, Some(len))
    }
}

impl ExactSizeIterator for Messages<'_> {}

/// Encodes a packet.
///
/// An `Event` or `Ack` with attachments goes out as `BINARY_EVENT` or
/// `BINARY_ACK` with its attachment count; a `BinaryEvent` or `BinaryAck`
/// without attachments goes out as a plain `EVENT` or `ACK`, since a binary
/// type with no attachment is invalid. Other types cannot carry attachments:
/// theirs are not sent. The namespace is left out when it is `/` (or empty).
///
/// The namespace must not contain `,`, which ends it on the wire (Node's
/// encoder throws); namespaces taken from decoded packets never do.
///
/// The JSON is written straight into the Engine.IO packet buffer.
///
/// ```
/// use iocluster_socketio::parser::{Packet, PacketType, encode};
///
/// let packet = Packet {
///     kind: PacketType::Ack,
///     nsp: "/admin".into(),
///     id: Some(13),
///     data: Some(serde_json::json!(["bar"])),
///     attachments: Vec::new(),
/// };
/// assert_eq!(encode(&packet).text.as_str(), r#"3/admin,13["bar"]"#);
/// ```
pub fn encode(packet: &Packet) -> Encoded {
    let attachments = match packet.kind {
        PacketType::Event | PacketType::Ack | PacketType::BinaryEvent | PacketType::BinaryAck => {
            packet.attachments.clone()
        }
        PacketType::Connect | PacketType::Disconnect | PacketType::ConnectError => Vec::new(),
    };
    let kind = wire_type(packet.kind, !attachments.is_empty());
    let text = Text::build(len_hint(packet), |buf| {
        write_packet(buf, kind, attachments.len(), packet)
    });
    Encoded { text, attachments }
}

/// The type written on the wire, which says whether attachments follow.
fn wire_type(kind: PacketType, has_attachments: bool) -> PacketType {
    match (kind, has_attachments) {
        (PacketType::Event | PacketType::BinaryEvent, true) => PacketType::BinaryEvent,
        (PacketType::Event | PacketType::BinaryEvent, false) => PacketType::Event,
        (PacketType::Ack | PacketType::BinaryAck, true) => PacketType::BinaryAck,
        (PacketType::Ack | PacketType::BinaryAck, false) => PacketType::Ack,
        (other, _) => other,
    }
}

/// Writes `<type>[<attachments>-][<nsp>,][<id>][<json>]`.
fn write_packet(buf: &mut String, kind: PacketType, attachments: usize, packet: &Packet) {
    buf.push(kind.to_char());
    // Writing into a String cannot fail, and neither can serialising a
    // `Value` (its map keys are strings and its numbers finite), so the
    // `fmt::Result`s below are always `Ok`.
    if attachments > 0 {
        let _ = write!(buf, "{attachments}-");
    }
    if !packet.nsp.is_empty() && packet.nsp != "/" {
        buf.push_str(&packet.nsp);
        buf.push(',');
    }
    if let Some(id) = packet.id {
        let _ = write!(buf, "{id}");
    }
    if let Some(data) = &packet.data {
        // `Value`'s Display is compact JSON, the same as JSON.stringify.
        let _ = write!(buf, "{data}");
    }
}

/// Room for the header fields (type, count, id) besides the namespace.
const HEADER_HINT: usize = 1 + 4 + 1 + 20;

/// A guess of the encoded length, so the buffer is allocated once for most
/// packets. It costs a walk over the value's nodes, not its bytes.
fn len_hint(packet: &Packet) -> usize {
    let data = packet
        .data
        .as_ref()
        .map_or(0, |data| json_len_hint(data, 0));
    HEADER_HINT + packet.nsp.len() + 1 + data
}

/// How deep [`json_len_hint`] looks before guessing.
const HINT_DEPTH: usize = 8;

/// A guess of the compact JSON length of `value`: exact for strings without
/// escapes, generous for numbers, a flat guess below [`HINT_DEPTH`].
fn json_len_hint(value: &Value, depth: usize) -> usize {
    match value {
        Value::Null => 4,
        Value::Bool(_) => 5,
        Value::Number(_) => 12,
        Value::String(text) => text.len() + 2,
        _ if depth >= HINT_DEPTH => 64,
        Value::Array(items) => {
            let inner: usize = items
                .iter()
                .map(|item| json_len_hint(item, depth + 1))
                .sum();
            2 + items.len() + inner
        }
        Value::Object(map) => {
            let inner: usize = map
                .iter()
                .map(|(key, value)| key.len() + 3 + json_len_hint(value, depth + 1))
                .sum();
            2 + map.len() + inner
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn packet(kind: PacketType, nsp: &str, id: Option<u64>, data: Option<Value>) -> Packet {
        Packet {
            kind,
            nsp: nsp.to_owned(),
            id,
            data,
            attachments: Vec::new(),
        }
    }

    fn text(packet: &Packet) -> String {
        encode(packet).text.as_str().to_owned()
    }

    #[test]
    fn main_namespace_is_left_out() {
        assert_eq!(text(&packet(PacketType::Connect, "/", None, None)), "0");
        assert_eq!(text(&packet(PacketType::Connect, "", None, None)), "0");
        assert_eq!(
            text(&packet(PacketType::Disconnect, "/admin", None, None)),
            "1/admin,"
        );
    }

    #[test]
    fn event_with_attachments_is_written_as_binary_event() {
        let mut event = packet(
            PacketType::Event,
            "/",
            Some(3),
            Some(json!(["a", {"_placeholder": true, "num": 0}])),
        );
        event.attachments = vec![Bytes::from_static(b"x"), Bytes::from_static(b"y")];
        let encoded = encode(&event);
        assert_eq!(
            encoded.text.as_str(),
            r#"52-3["a",{"_placeholder":true,"num":0}]"#
        );
        assert_eq!(encoded.attachments, event.attachments);
    }

    #[test]
    fn ack_with_attachments_is_written_as_binary_ack() {
        let mut ack = packet(
            PacketType::Ack,
            "/admin",
            Some(15),
            Some(json!([{"_placeholder": true, "num": 0}])),
        );
        ack.attachments = vec![Bytes::from_static(b"x")];
        assert_eq!(text(&ack), r#"61-/admin,15[{"_placeholder":true,"num":0}]"#);
    }

    #[test]
    fn binary_types_without_attachments_are_written_plain() {
        assert_eq!(
            text(&packet(
                PacketType::BinaryEvent,
                "/",
                None,
                Some(json!(["a"]))
            )),
            r#"2["a"]"#
        );
        assert_eq!(
            text(&packet(
                PacketType::BinaryAck,
                "/",
                Some(1),
                Some(json!([]))
            )),
            "31[]"
        );
    }

    #[test]
    fn attachments_on_other_types_are_not_sent() {
        let mut connect = packet(PacketType::Connect, "/", None, Some(json!({})));
        connect.attachments = vec![Bytes::from_static(b"x")];
        let encoded = encode(&connect);
        assert_eq!(encoded.text.as_str(), "0{}");
        assert!(encoded.attachments.is_empty());
        assert_eq!(encoded.messages().len(), 1);
    }

    #[test]
    fn messages_are_text_then_each_attachment_sharing_buffers() {
        let mut event = packet(
            PacketType::Event,
            "/",
            None,
            Some(json!(["a", {"_placeholder": true, "num": 0}, {"_placeholder": true, "num": 1}])),
        );
        event.attachments = vec![Bytes::from(vec![1u8; 16]), Bytes::from(vec![2u8; 16])];
        let encoded = encode(&event);
        let messages = encoded.messages();
        assert_eq!(messages.len(), 3);
        let messages: Vec<_> = messages.collect();
        assert_eq!(messages[0], Message::Text(encoded.text.clone()));
        for (message, attachment) in messages[1..].iter().zip(&event.attachments) {
            let Message::Binary(bytes) = message else {
                panic!("attachment sent as {message:?}");
            };
            assert_eq!(bytes.as_ptr(), attachment.as_ptr());
        }
    }

    #[test]
    fn messages_len_counts_down() {
        let mut event = packet(PacketType::Event, "/", None, Some(json!(["a"])));
        event.attachments = vec![Bytes::new()];
        let encoded = encode(&event);
        let mut messages = encoded.messages();
        assert_eq!(messages.len(), 2);
        messages.next();
        assert_eq!(messages.len(), 1);
        messages.next();
        assert_eq!(messages.len(), 0);
        assert!(messages.next().is_none());
    }

    #[test]
    fn clones_share_the_text_buffer() {
        let encoded = encode(&packet(PacketType::Event, "/", None, Some(json!(["a"]))));
        let clone = encoded.clone();
        assert_eq!(clone.text.as_str().as_ptr(), encoded.text.as_str().as_ptr());
    }

    #[test]
    fn json_is_compact_and_escaped() {
        let data = json!(["say", "line\n\"quoted\"", {"k": [1, 2.5, null, true]}]);
        assert_eq!(
            text(&packet(PacketType::Event, "/", None, Some(data))),
            r#"2["say","line\n\"quoted\"",{"k":[1,2.5,null,true]}]"#
        );
    }

    #[test]
    fn length_hint_covers_plain_strings() {
        let event = packet(
            PacketType::Event,
            "/chat",
            Some(u64::MAX),
            Some(json!(["message", "x".repeat(1024)])),
        );
        assert!(len_hint(&event) >= text(&event).len());
    }

    #[test]
    fn deeply_nested_values_get_a_flat_length_guess() {
        let mut value = json!(1);
        for _ in 0..100 {
            value = json!([value]);
        }
        assert!(json_len_hint(&value, 0) > 0);
    }
}
