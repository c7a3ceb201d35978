//! The seeds of the `redis_msgpack` and `redis_wire` corpora: the vectors
//! made by the real Node packages (`tests/vectors/notepack.json`) and
//! messages written by our encoders. Run by hand to write them again:
//! `cargo test -p iocluster-redis write_seeds -- --ignored`.

use bytes::Bytes;
use serde_json::{Value, json};

use crate::adapter::cluster::wire::{self as cluster_wire, Item, MessageType};
use crate::adapter::sharded::wire as sharded_wire;
use crate::msgpack;
use crate::wire::{self, BroadcastParts, OptsOrder, RequestOpts, RequestType, RoomsRequest};

const VECTORS: &str = include_str!("../../tests/vectors/notepack.json");

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    std::fs::create_dir_all(&dir).unwrap();
    let name: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// `(name, bytes)` of every case of a section that has its full bytes
/// (`hex`, or `text` for the emitter's JSON requests).
fn vectors(section: &str) -> Vec<(String, Vec<u8>)> {
    let all: Value = serde_json::from_str(VECTORS).unwrap();
    all[section]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|case| {
            let name = format!("{section}_{}", case["name"].as_str().unwrap());
            match (case["hex"].as_str(), case["text"].as_str()) {
                (Some(hex), _) => Some((name, unhex(hex))),
                (None, Some(text)) => Some((name, text.as_bytes().to_vec())),
                (None, None) => None,
            }
        })
        .collect()
}

#[test]
#[ignore = "writes the seed corpora"]
fn write_seeds() {
    for section in ["encode", "decode"] {
        for (name, bytes) in vectors(section) {
            write("redis_msgpack", &name, &bytes);
        }
    }
    let binary = [Bytes::from_static(&[1, 2, 3])];
    let data = json!(["event", {"a": [1, -2, 3.5, null, true]}, {"_placeholder": true, "num": 0}]);
    write(
        "redis_msgpack",
        "ours_event",
        &msgpack::encode(&data, &binary),
    );

    for section in ["emitter", "adapter"] {
        for (name, bytes) in vectors(section) {
            write("redis_wire", &name, &bytes);
        }
    }
    let rooms = ["room1".to_owned()];
    let flags = [
        ("volatile", Value::Bool(true)),
        ("timeout", Value::from(5000)),
    ];
    let parts = BroadcastParts {
        nsp: "/",
        data: &data,
        attachments: &binary,
        rooms: &rooms,
        except: &[],
        flags: &flags,
    };
    let messages: Vec<(&str, Vec<u8>)> = vec![
        ("ours_broadcast", wire::broadcast_message("abcdef", &parts, OptsOrder::Adapter)),
        ("ours_broadcast_request", wire::broadcast_request("abcdef", "0123456789abcdef", &parts)),
        ("ours_broadcast_ack", wire::broadcast_ack("0123456789abcdef", Some(&json!("ok")), &[])),
        (
            "ours_remote_join",
            serde_json::to_vec(&RoomsRequest {
                uid: Some("abcdef"),
                kind: RequestType::RemoteJoin as u8,
                opts: RequestOpts { rooms: &rooms, except: &[] },
                rooms: &rooms,
            })
            .unwrap(),
        ),
        (
            "node_fetch_sockets_response",
            br#"{"requestId":"0123456789abcdef","sockets":[{"id":"s1","handshake":{"headers":{},"time":"","address":"::1","xdomain":false,"secure":false,"issued":0,"url":"/","query":{},"auth":{}},"rooms":["s1"],"data":{}}]}"#.to_vec(),
        ),
        (
            "ours_sharded_broadcast_json",
            sharded_wire::encode(
                MessageType::Broadcast,
                Some(Item::Map(vec![
                    ("packet", cluster_wire::packet(&json!(["event", 1]))),
                    ("opts", cluster_wire::opts(&rooms, &[], &flags)),
                ])),
                "abcdef",
                "/",
                &[],
            ),
        ),
        (
            "ours_sharded_server_side_emit_msgpack",
            sharded_wire::encode(
                MessageType::ServerSideEmit,
                Some(Item::Map(vec![
                    ("requestId", Item::Str("0123456789abcdef")),
                    ("packet", Item::Json(&data)),
                ])),
                "abcdef",
                "/chat",
                &binary,
            ),
        ),
        (
            "ours_sharded_heartbeat",
            sharded_wire::encode(MessageType::InitialHeartbeat, None, "abcdef", "/", &[]),
        ),
    ];
    for (name, bytes) in messages {
        write("redis_wire", name, &bytes);
    }
}
