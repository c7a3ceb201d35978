//! The codec and the message builders against bytes produced by the real
//! notepack.io, @socket.io/redis-emitter and @socket.io/redis-adapter
//! (`tests/vectors/notepack.json`, made by `tests/js/redis/vectors.js`).

use bytes::Bytes;
use fred::types::Builder;
use iocluster_socketio::Payload;
use serde_json::Value;

use crate::emitter::{Emitter, EmitterOperator};
use crate::msgpack;
use crate::wire::{self, BroadcastParts, OptsOrder, RequestType};

const VECTORS: &str = include_str!("../tests/vectors/notepack.json");

fn vectors(section: &str) -> Vec<Value> {
    let all: Value = serde_json::from_str(VECTORS).unwrap();
    all[section].as_array().unwrap().clone()
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The value with each placeholder replaced by `{"$bin": hex}`: equal
/// whatever order the attachments were numbered in.
fn resolved(value: &Value, attachments: &[Bytes]) -> Value {
    match value {
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| resolved(v, attachments)).collect())
        }
        Value::Object(map) => match iocluster_socketio::placeholder_num(value) {
            Some(n) => serde_json::json!({"$bin": hex(&attachments[n])}),
            None => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), resolved(v, attachments)))
                    .collect(),
            ),
        },
        other => other.clone(),
    }
}

fn attachments(case: &Value) -> Vec<Bytes> {
    case["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| Bytes::from(unhex(h.as_str().unwrap())))
        .collect()
}

/// Compares with the full hex, or with the first 16 bytes and the length
/// for big vectors.
fn assert_bytes(name: &str, case: &Value, bytes: &[u8]) {
    if let Some(expected) = case["hex"].as_str() {
        assert_eq!(hex(bytes), expected, "{name}");
    } else {
        assert_eq!(
            bytes.len() as u64,
            case["length"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            hex(&bytes[..16]),
            case["prefix"].as_str().unwrap(),
            "{name}"
        );
    }
}

#[test]
fn encoding_matches_notepack_byte_for_byte() {
    for case in vectors("encode") {
        let name = case["name"].as_str().unwrap();
        let value: Value = serde_json::from_str(case["json"].as_str().unwrap()).unwrap();
        let bytes = msgpack::encode(&value, &attachments(&case));
        assert_bytes(name, &case, &bytes);
    }
}

#[test]
fn decoding_reads_what_notepack_encodes() {
    for case in vectors("encode") {
        let name = case["name"].as_str().unwrap();
        // Integral floats come back as integers, as in JavaScript; past
        // 2^64 notepack keeps only the low bits.
        if name.starts_with("float 2^64") || name == "float 1e300" {
            continue;
        }
        let Some(hex) = case["hex"].as_str() else {
            continue;
        };
        let (value, binary) = msgpack::decode(&unhex(hex)).unwrap();
        let expected: Value = serde_json::from_str(case["json"].as_str().unwrap()).unwrap();
        let expected = match expected.as_f64() {
            Some(f) if f.floor() == f && !expected.is_i64() && !expected.is_u64() => {
                Value::from(f as i64)
            }
            _ => expected,
        };
        assert_eq!(
            resolved(&value, &binary),
            resolved(&expected, &attachments(&case)),
            "{name}"
        );
    }
}

#[test]
fn decoding_reads_node_only_forms_as_node_would_print_them() {
    for case in vectors("decode") {
        let name = case["name"].as_str().unwrap();
        let (value, binary) = msgpack::decode(&unhex(case["hex"].as_str().unwrap())).unwrap();
        let expected: Value = serde_json::from_str(case["json"].as_str().unwrap()).unwrap();
        assert_eq!(value, expected, "{name}");
        assert_eq!(binary, attachments(&case), "{name}");
    }
}

#[test]
fn decoding_refuses_truncated_trailing_and_deep_input() {
    use msgpack::DecodeError;
    assert_eq!(msgpack::decode(&[0x92, 0x01]), Err(DecodeError::Truncated));
    assert_eq!(
        msgpack::decode(&[0xdd, 0xff, 0xff, 0xff, 0xff]),
        Err(DecodeError::Truncated)
    );
    assert_eq!(
        msgpack::decode(&[0x01, 0x02]),
        Err(DecodeError::TrailingBytes(1))
    );
    assert_eq!(
        msgpack::decode(&[0xc1]),
        Err(DecodeError::UnknownMarker(0xc1))
    );
    assert_eq!(
        msgpack::decode(&[0xa1, 0xff]),
        Err(DecodeError::InvalidUtf8)
    );
    assert_eq!(msgpack::decode(&[0x91; 200]), Err(DecodeError::TooDeep));
}

fn emitter() -> Emitter {
    Emitter::new(Builder::default_centralized().build().unwrap())
}

fn payload(args: Vec<Value>) -> Payload {
    Payload::new(args)
}

/// Each case of `vectors.js`'s emitter section, built with our emitter.
fn emitter_case(name: &str) -> (String, Result<Vec<u8>, String>) {
    use serde_json::json;
    let e = emitter();
    let emit = |op: EmitterOperator, event: &str, p: Payload| {
        let (channel, bytes) = op.emit_message(event, p).unwrap();
        (channel, Ok(bytes))
    };
    let text = |(channel, text): (String, String)| (channel, Err(text));
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    match name {
        "emit" => emit(
            e.operator(),
            "hello",
            payload(vec![json!(1), json!("two"), json!({"three": [3]})]),
        ),
        "emit no args" => emit(e.operator(), "ping", Payload::empty()),
        "emit binary" => emit(
            e.operator(),
            "bin",
            Payload {
                args: vec![
                    iocluster_socketio::placeholder(0),
                    json!({"nested": iocluster_socketio::placeholder(1)}),
                ],
                attachments: vec![Bytes::from_static(&[1, 2, 3]), Bytes::from_static(&[4])],
            },
        ),
        "to one room" => emit(e.to("room1"), "hello", payload(vec![json!("world")])),
        "to two rooms except one" => emit(
            e.to("room1").to("room2").except("room3"),
            "hello",
            Payload::empty(),
        ),
        "to one room except one" => emit(e.to("room1").except("room3"), "hello", Payload::empty()),
        "except only" => emit(e.except("a").except("b"), "hello", Payload::empty()),
        "volatile" => emit(e.volatile(), "hello", Payload::empty()),
        "compress false" => emit(e.compress(false), "hello", Payload::empty()),
        "of namespace" => emit(e.of("/custom").to("r"), "hello", payload(vec![json!(42)])),
        "of namespace without slash" => emit(e.of("custom").operator(), "hello", Payload::empty()),
        "sockets join" => text(
            e.to("room1")
                .except("room2")
                .rooms_message(RequestType::RemoteJoin, &strings(&["room3", "room4"]))
                .unwrap(),
        ),
        "sockets join one room" => text(
            e.operator()
                .rooms_message(RequestType::RemoteJoin, &strings(&["room3"]))
                .unwrap(),
        ),
        "sockets leave" => text(
            e.within("room1")
                .rooms_message(RequestType::RemoteLeave, &strings(&["room2"]))
                .unwrap(),
        ),
        "disconnect sockets" => text(e.to("room1").disconnect_message(false).unwrap()),
        "disconnect sockets close" => text(e.operator().disconnect_message(true).unwrap()),
        "server side emit" => text(
            e.server_side_emit_message("hello", payload(vec![json!("world"), json!(1)]))
                .unwrap(),
        ),
        other => panic!("no Rust case for emitter vector {other}"),
    }
}

#[test]
fn emitter_messages_match_node_emitter_byte_for_byte() {
    for case in vectors("emitter") {
        let name = case["name"].as_str().unwrap();
        let (channel, message) = emitter_case(name);
        assert_eq!(channel, case["channel"].as_str().unwrap(), "{name}");
        match message {
            Ok(bytes) => assert_eq!(hex(&bytes), case["hex"].as_str().unwrap(), "{name}"),
            Err(text) => assert_eq!(text, case["text"].as_str().unwrap(), "{name}"),
        }
    }
}

#[test]
fn emitter_refuses_reserved_event_names() {
    let result = emitter()
        .to("r")
        .emit_message("disconnect", Payload::empty());
    assert!(matches!(result, Err(crate::Error::ReservedEvent(_))));
}

#[test]
fn adapter_broadcasts_match_node_adapter_byte_for_byte() {
    use serde_json::json;
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    for case in vectors("adapter") {
        let name = case["name"].as_str().unwrap();
        let (nsp, data, attachments, rooms, except, flags) = match name {
            "broadcast" => (
                "/",
                json!(["hello", 1, "two"]),
                vec![],
                vec![],
                vec![],
                vec![],
            ),
            "broadcast to one room" => (
                "/",
                json!(["hello"]),
                vec![],
                strings(&["room1"]),
                vec![],
                vec![],
            ),
            "broadcast to one room except one" => (
                "/",
                json!(["hello"]),
                vec![],
                strings(&["room1"]),
                strings(&["room2"]),
                vec![],
            ),
            "broadcast to rooms except" => (
                "/",
                json!(["hello", {"a": 1}]),
                vec![],
                strings(&["room1", "room2"]),
                strings(&["room3"]),
                vec![],
            ),
            "broadcast volatile binary" => (
                "/",
                json!(["bin", {"_placeholder": true, "num": 0}]),
                vec![Bytes::from_static(&[1, 2, 3])],
                vec![],
                vec![],
                vec![("volatile", Value::Bool(true))],
            ),
            "broadcast in namespace" => {
                ("/admin", json!(["hello"]), vec![], vec![], vec![], vec![])
            }
            other => panic!("no Rust case for adapter vector {other}"),
        };
        let parts = BroadcastParts {
            nsp,
            data: &data,
            attachments: &attachments,
            rooms: &rooms,
            except: &except,
            flags: &flags,
        };
        let bytes = wire::broadcast_message("abcdef", &parts, OptsOrder::Adapter);
        assert_eq!(hex(&bytes), case["hex"].as_str().unwrap(), "{name}");
        let channel = crate::channels::Channels::new("socket.io", nsp).broadcast_to(&rooms);
        assert_eq!(channel, case["channel"].as_str().unwrap(), "{name}");
        // And we read back what Node publishes.
        let incoming = wire::decode_broadcast(&Bytes::from(bytes)).unwrap();
        assert_eq!(incoming.uid, "abcdef");
        assert_eq!(incoming.packet.data, Some(data), "{name}");
        assert_eq!(incoming.packet.attachments, attachments, "{name}");
        assert_eq!(incoming.opts.rooms, rooms, "{name}");
        assert_eq!(incoming.opts.except, except, "{name}");
    }
}
