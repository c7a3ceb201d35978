//! Property tests: every packet the encoder writes, a decoder reads back
//! the same, attachments included.

use bytes::Bytes;
use proptest::prelude::*;
use serde_json::{Map, Value};

use crate::engineio::Message;
use crate::parser::{Decoder, Packet, PacketType, encode};
use crate::placeholder;

/// JSON values as clients send them. Floats are multiples of 1/8 below a
/// million: serde_json reads every float back exactly only with its
/// `float_roundtrip` feature, which we do not use, and these it always
/// does.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-8_000_000i32..8_000_000).prop_map(|n| Value::from(f64::from(n) / 8.0)),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((any::<String>(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A namespace: `/`, or `/` and any text without the `,` that ends it.
fn namespace() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/".to_owned()),
        any::<String>().prop_map(|name| format!("/{}", name.replace(',', ""))),
    ]
}

/// An event name Node does not reserve.
fn event_name() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[a-z]{1,12}"
            .prop_filter("reserved", |name| {
                !["connect", "disconnect", "disconnecting"].contains(&name.as_str())
            })
            .prop_map(Value::String),
        any::<u32>().prop_map(Value::from),
    ]
}

/// Arguments with `attachments` placeholders among them.
fn arguments_with(attachments: Vec<Vec<u8>>) -> impl Strategy<Value = (Vec<Value>, Vec<Bytes>)> {
    let count = attachments.len();
    (
        proptest::collection::vec(json(), 0..4),
        Just(attachments),
        any::<prop::sample::Index>(),
    )
        .prop_map(move |(mut args, attachments, at)| {
            // Placeholders in order at one place, the others nested in an
            // object, as a client puts a Buffer inside its data.
            for num in 0..count {
                let index = at.index(args.len() + 1);
                if num % 2 == 0 {
                    args.insert(index, placeholder(num));
                } else {
                    args.insert(index, serde_json::json!({ "file": placeholder(num) }));
                }
            }
            (args, attachments.into_iter().map(Bytes::from).collect())
        })
}

/// Any packet a client or server may send, as the decoder gives it back:
/// events and acks with attachments are `BinaryEvent`/`BinaryAck`.
fn packet() -> impl Strategy<Value = Packet> {
    let attachments =
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..32), 0..4);
    let event = (
        event_name(),
        attachments.clone().prop_flat_map(arguments_with),
    )
        .prop_map(|(name, (mut args, attachments))| {
            args.insert(0, name);
            (PacketType::Event, Some(Value::Array(args)), attachments)
        });
    let ack = attachments
        .prop_flat_map(arguments_with)
        .prop_map(|(args, attachments)| (PacketType::Ack, Some(Value::Array(args)), attachments));
    let object = || {
        proptest::collection::vec(("[a-z]{1,8}", json()), 0..4)
            .prop_map(|entries| Value::Object(entries.into_iter().collect()))
    };
    let connect =
        proptest::option::of(object()).prop_map(|data| (PacketType::Connect, data, Vec::new()));
    let disconnect = Just((PacketType::Disconnect, None, Vec::new()));
    let connect_error = prop_oneof![any::<String>().prop_map(Value::String), object()]
        .prop_map(|data| (PacketType::ConnectError, Some(data), Vec::new()));
    (
        prop_oneof![event, ack, connect, disconnect, connect_error],
        namespace(),
        proptest::option::of(any::<u64>()),
    )
        .prop_map(|((kind, data, attachments), nsp, id)| {
            let kind = match kind {
                PacketType::Event if !attachments.is_empty() => PacketType::BinaryEvent,
                PacketType::Ack if !attachments.is_empty() => PacketType::BinaryAck,
                kind => kind,
            };
            Packet {
                kind,
                nsp,
                id,
                data,
                attachments,
            }
        })
}

/// Feeds the encoded messages to a new decoder: the packet must come out
/// of the last one, and of no other.
fn read_back(packet: &Packet) -> Option<Packet> {
    let mut decoder = Decoder::default();
    let messages: Vec<Message> = encode(packet).messages().collect();
    let last = messages.len() - 1;
    let mut out = None;
    for (i, message) in messages.into_iter().enumerate() {
        out = match message {
            Message::Text(text) => decoder.decode_text(text.as_str()),
            Message::Binary(data) => decoder.decode_binary(data),
        }
        .unwrap_or_else(|e| panic!("message {i} of {packet:?} refused: {e}"));
        assert_eq!(out.is_some(), i == last, "message {i} of {packet:?}");
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_packet_reads_back_as_encoded(packet in packet()) {
        prop_assert_eq!(read_back(&packet), Some(packet));
    }
}
