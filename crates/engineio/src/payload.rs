//! Polling payloads: packets joined by the record separator `0x1e`.

use base64::Engine as _;
use bytes::Bytes;

use crate::error::PacketError;
use crate::packet::{Message, Packet};

/// The record separator between packets of a payload.
pub const SEPARATOR: char = '\x1e';

/// Decodes a polling request body into its packets.
///
/// Each record is a text packet, or `b` followed by base64 for a binary
/// message. The first malformed record fails the whole payload.
pub(crate) fn decode(body: &[u8]) -> Result<Vec<Packet>, PacketError> {
    let text = std::str::from_utf8(body).map_err(|_| PacketError::InvalidUtf8)?;
    let mut packets = Vec::with_capacity(1 + memchr::memchr_iter(0x1e, body).count());
    for record in text.split(SEPARATOR) {
        packets.push(decode_record(record)?);
    }
    Ok(packets)
}

fn decode_record(record: &str) -> Result<Packet, PacketError> {
    match record.strip_prefix('b') {
        Some(base64) => {
            let data = base64::engine::general_purpose::STANDARD
                .decode(base64)
                .map_err(|_| PacketError::InvalidBase64)?;
            Ok(Packet::Message(Message::Binary(Bytes::from(data))))
        }
        None => Packet::decode_text(record),
    }
}

/// Encodes packets as one polling payload.
pub(crate) fn encode<'a>(packets: impl IntoIterator<Item = &'a Packet> + Clone) -> String {
    let capacity: usize = packets
        .clone()
        .into_iter()
        .map(|p| p.text_len_hint() + 1)
        .sum();
    let mut out = String::with_capacity(capacity);
    for (i, packet) in packets.into_iter().enumerate() {
        if i > 0 {
            out.push(SEPARATOR);
        }
        packet.write_text(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_text_and_binary() {
        let packets = vec![
            Packet::Message(Message::text("hello")),
            Packet::Message(Message::binary(vec![1u8, 2, 3, 4])),
            Packet::Ping { probe: false },
        ];
        let body = encode(&packets);
        assert_eq!(body, "4hello\x1ebAQIDBA==\x1e2");
        assert_eq!(decode(body.as_bytes()), Ok(packets));
    }

    #[test]
    fn decodes_the_spec_examples() {
        assert_eq!(
            decode(b"4test1\x1e4test2\x1e4test3").map(|p| p.len()),
            Ok(3)
        );
        assert_eq!(
            decode(b"4hello\x1ebAQIDBA=="),
            Ok(vec![
                Packet::Message(Message::text("hello")),
                Packet::Message(Message::binary(vec![1u8, 2, 3, 4]))
            ])
        );
    }

    #[test]
    fn rejects_malformed_payloads() {
        assert_eq!(decode(b""), Err(PacketError::Empty));
        assert_eq!(decode(b"abc"), Err(PacketError::UnknownType('a')));
        assert_eq!(decode(b"4a\x1e"), Err(PacketError::Empty));
        assert_eq!(decode(b"b!!!"), Err(PacketError::InvalidBase64));
        assert_eq!(decode(b"bAQI"), Err(PacketError::InvalidBase64));
        assert_eq!(decode(b"4\xff\xfe"), Err(PacketError::InvalidUtf8));
    }

    #[test]
    fn keeps_separator_free_text_intact() {
        assert_eq!(
            decode("4a\u{1f}b".as_bytes()),
            Ok(vec![Packet::Message(Message::text("a\u{1f}b"))])
        );
    }
}
