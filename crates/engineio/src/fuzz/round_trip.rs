//! Property tests: what the server writes, the decoders read back.

use bytes::Bytes;
use proptest::prelude::*;

use crate::packet::{Message, Packet};
use crate::payload;

/// Any text, without the record separator, which no payload can carry in a
/// text (Node's encoder does not escape it either).
fn record_text() -> impl Strategy<Value = String> {
    any::<String>().prop_map(|text| text.replace(payload::SEPARATOR, ""))
}

/// Every packet a client may send, text messages any text.
fn packet(text: impl Strategy<Value = String>) -> impl Strategy<Value = Packet> {
    prop_oneof![
        Just(Packet::Close),
        any::<bool>().prop_map(|probe| Packet::Ping { probe }),
        any::<bool>().prop_map(|probe| Packet::Pong { probe }),
        text.prop_map(|text| Packet::Message(Message::text(&text))),
        proptest::collection::vec(any::<u8>(), 0..64)
            .prop_map(|data| Packet::Message(Message::Binary(Bytes::from(data)))),
        Just(Packet::Upgrade),
        Just(Packet::Noop),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn text_packets_read_back_from_their_text_and_their_frame(packet in packet(any::<String>())) {
        if let Packet::Message(Message::Binary(_)) = packet {
            // Binary travels as a binary frame or a `b` record, below.
            return Ok(());
        }
        let mut text = String::new();
        packet.write_text(&mut text);
        prop_assert_eq!(Packet::decode_text(&text), Ok(packet.clone()));
        let axum::extract::ws::Message::Text(frame) = packet.clone().into_frame() else {
            panic!("{packet:?} is not a text frame");
        };
        prop_assert_eq!(Packet::decode_frame(frame), Ok(packet));
    }

    #[test]
    fn payloads_read_back_packet_for_packet(
        packets in proptest::collection::vec(packet(record_text()), 1..8),
    ) {
        let body = payload::encode(&packets);
        prop_assert_eq!(payload::decode(body.as_bytes()), Ok(packets));
    }
}
