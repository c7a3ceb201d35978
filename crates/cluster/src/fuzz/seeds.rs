//! The seeds of the `cluster_envelope` and `cluster_frame` corpora, written
//! by the real encoders. Run by hand to write them again:
//! `cargo test -p iocluster-cluster write_seeds -- --ignored`.

use bytes::Bytes;
use iocluster_socketio::adapter::{BroadcastFlags, BroadcastOptions};
use serde_json::json;

use crate::adapter::envelope::{self, Header};
use crate::control::{FLAG_RECORD, Frame, MasterMessage, TO_ALL, TO_MASTER, WorkerMessage};
use crate::report::WorkerReport;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn opts(rooms: &[&str], except: &[&str]) -> BroadcastOptions {
    BroadcastOptions {
        rooms: rooms.iter().map(|r| r.to_string()).collect(),
        except: except.iter().map(|r| r.to_string()).collect(),
        flags: BroadcastFlags {
            local: false,
            volatile: true,
            timeout: Some(5000),
        },
    }
}

fn envelopes() -> Vec<(&'static str, Bytes)> {
    let event = Bytes::from_static(br#"451-["file",{"_placeholder":true,"num":0}]"#);
    let attachment = Bytes::from_static(b"\x01\x02\x03");
    let socket = json!({
        "id": "s1",
        "handshake": {
            "headers": {"host": "localhost"}, "time": "Thu Jan 01 1970", "address": "::1",
            "xdomain": false, "secure": false, "issued": 0, "url": "/socket.io/?EIO=4",
            "query": {"EIO": "4"}, "auth": {"token": "t"}
        },
        "rooms": ["s1", "room"],
        "data": {"user": 1}
    });
    let headers = [
        (
            "broadcast",
            Header::Broadcast {
                nsp: "/".into(),
                opts: opts(&["room"], &["other"]),
                offset: Some("MTY4-1".into()),
            },
            vec![event.clone(), attachment.clone()],
        ),
        (
            "broadcast_with_ack",
            Header::BroadcastWithAck {
                nsp: "/chat".into(),
                opts: opts(&[], &[]),
                request: 7,
                data: json!(["question", 1.5, {"_placeholder": true, "num": 0}]),
            },
            vec![attachment.clone()],
        ),
        (
            "broadcast_client_count",
            Header::BroadcastClientCount {
                request: 7,
                count: 3,
            },
            vec![],
        ),
        (
            "broadcast_ack",
            Header::BroadcastAck {
                request: 7,
                args: vec![json!("answer"), json!(null)],
            },
            vec![],
        ),
        (
            "sockets_join",
            Header::SocketsJoin {
                nsp: "/".into(),
                opts: opts(&["a"], &[]),
                rooms: vec!["b".into()],
            },
            vec![],
        ),
        (
            "disconnect_sockets",
            Header::DisconnectSockets {
                nsp: "/".into(),
                opts: opts(&[], &["a"]),
                close: true,
            },
            vec![],
        ),
        (
            "fetch_sockets_response",
            Header::FetchSocketsResponse {
                request: 2,
                sockets: vec![serde_json::from_value(socket).unwrap()],
            },
            vec![],
        ),
        (
            "server_side_emit",
            Header::ServerSideEmit {
                nsp: "/".into(),
                request: Some(4),
                args: vec![json!("ping"), json!({"_placeholder": true, "num": 0})],
            },
            vec![attachment],
        ),
        ("absent", Header::Absent { request: 4 }, vec![]),
    ];
    headers
        .into_iter()
        .map(|(name, header, parts)| (name, envelope::encode(&header, &parts)))
        .collect()
}

#[test]
#[ignore = "writes the seed corpora"]
fn write_seeds() {
    let envelopes = envelopes();
    for (name, bytes) in &envelopes {
        write("cluster_envelope", name, bytes);
    }
    let worker = [
        WorkerMessage::Ready,
        WorkerMessage::SessionOpened {
            sid: "AAAAAB0123456789abcdefghij".into(),
        },
        WorkerMessage::TrackSession {
            nsp: "/".into(),
            record: json!({"sid": "s", "pid": "p", "rooms": ["r"], "data": {}}),
        },
        WorkerMessage::Connect {
            request: 1,
            instance: 2,
            remote: Some("127.0.0.1:5000".into()),
        },
        WorkerMessage::Report {
            request: 3,
            report: WorkerReport::default(),
        },
        WorkerMessage::Restore {
            request: 4,
            nsp: "/".into(),
            pid: "p".into(),
            offset: "MTY4-1".into(),
        },
    ];
    let master = [
        MasterMessage::Shutdown,
        MasterMessage::Peers {
            instances: vec![1, 2, 3],
        },
        MasterMessage::WorkerGone { instance: 2 },
    ];
    let mut frames: Vec<(String, Bytes)> = Vec::new();
    for (i, message) in worker.iter().enumerate() {
        frames.push((
            format!("worker_control_{i}"),
            Frame::control(message).encode(true),
        ));
    }
    for (i, message) in master.iter().enumerate() {
        frames.push((
            format!("master_control_{i}"),
            Frame::control(message).encode(false),
        ));
    }
    let broadcast = envelopes[0].1.clone();
    for (name, peer, flags) in [
        ("to_all", TO_ALL, FLAG_RECORD),
        ("to_master", TO_MASTER, 0),
        ("to_peer", 3, 0),
    ] {
        let relay = Frame::Relay {
            peer,
            flags,
            payload: broadcast.clone(),
        };
        frames.push((format!("worker_relay_{name}"), relay.encode(true)));
    }
    let relay = Frame::Relay {
        peer: 3,
        flags: 0,
        payload: broadcast.clone(),
    };
    frames.push(("master_relay".into(), relay.encode(false)));
    let restored = Frame::Restored {
        request: 4,
        record: Some(Bytes::from_static(
            br#"{"sid":"s","pid":"p","rooms":["r"],"data":{}}"#,
        )),
        packets: vec![broadcast.clone(), broadcast],
    };
    frames.push(("master_restored".into(), restored.encode(false)));
    let none = Frame::Restored {
        request: 5,
        record: None,
        packets: vec![],
    };
    frames.push(("master_restored_none".into(), none.encode(false)));
    for (name, bytes) in frames {
        write("cluster_frame", &name, &bytes);
    }
}
