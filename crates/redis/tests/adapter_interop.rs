//! An iocluster server with [`RedisAdapterFactory`] and a Node socket.io
//! 4.8 server with @socket.io/redis-adapter on one Redis: each sees the
//! other's clients, sockets, server-side events and acks.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

mod support;

use std::time::Duration;

use bytes::Bytes;
use iocluster_redis::fred::interfaces::{EventInterface, PubsubInterface};
use iocluster_socketio::Payload;
use iocluster_testkit::{NodePeer, RedisServer, WAIT, within};
use serde_json::{Value, json};
use support::{RustServer, sorted_first_args};

struct Setup {
    _redis: RedisServer,
    peer: NodePeer,
    rust: RustServer,
}

/// Redis, our server, the Node peer; Node clients `n1` (on the Node
/// server) and `r1` (on ours), both in room `chat`, and `n2`, `r2` in no
/// room.
async fn setup() -> Setup {
    let redis = RedisServer::start().await;
    let mut peer = NodePeer::start(redis.port).await;
    let rust = RustServer::start(&redis.url()).await;
    let (node_url, rust_url) = (peer.url(), rust.url());
    peer.connect("n1", &node_url).await;
    peer.connect("n2", &node_url).await;
    peer.connect("r1", &rust_url).await;
    peer.connect("r2", &rust_url).await;
    peer.join("n1", "chat").await;
    peer.join("r1", "chat").await;
    Setup {
        _redis: redis,
        peer,
        rust,
    }
}

const CLIENTS: [&str; 4] = ["n1", "n2", "r1", "r2"];

/// A last event from our server to everyone: once each client has it, it
/// has what was sent before it.
async fn flush(setup: &Setup) {
    setup.rust.io.emit("flush", ());
    for name in CLIENTS {
        setup.peer.client_event(name, "flush").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_servers_count_each_other() {
    let mut setup = setup().await;
    assert_eq!(setup.rust.io.of("/").server_count().await, 2);
    assert_eq!(setup.peer.ok(json!({"cmd": "serverCount"})).await, json!(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_broadcasts_reach_clients_of_both_servers_in_rooms_and_with_except() {
    let setup = setup().await;
    let io = &setup.rust.io;
    io.emit(
        "everyone",
        Payload::new(vec![json!({"a": [1, 2]})]).with_binary(Bytes::from_static(&[9, 8])),
    );
    io.to("chat").emit("chat", "hi");
    io.broadcast().except("chat").emit("not-chat", ());
    flush(&setup).await;
    for name in CLIENTS {
        let args = setup.peer.client_event(name, "everyone").await;
        assert_eq!(args, json!([{"a": [1, 2]}, {"$bin": "0908"}]), "{name}");
    }
    assert_eq!(setup.peer.received("n1"), ["everyone", "chat", "flush"]);
    assert_eq!(setup.peer.received("r1"), ["everyone", "chat", "flush"]);
    assert_eq!(setup.peer.received("n2"), ["everyone", "not-chat", "flush"]);
    assert_eq!(setup.peer.received("r2"), ["everyone", "not-chat", "flush"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_broadcasts_reach_our_clients_in_rooms_and_with_except() {
    let mut setup = setup().await;
    let emit = |rooms: Value, except: Value, ev: &str, args: Value| json!({"cmd": "emit", "rooms": rooms, "except": except, "ev": ev, "args": args});
    setup
        .peer
        .ok(emit(
            json!([]),
            json!([]),
            "everyone",
            json!([1, {"$bin": "cafe"}]),
        ))
        .await;
    setup
        .peer
        .ok(emit(json!(["chat"]), json!([]), "chat", json!(["hi"])))
        .await;
    setup
        .peer
        .ok(emit(json!([]), json!(["chat"]), "not-chat", json!([])))
        .await;
    // Node's broadcasts reach our server after Node's own clients: wait
    // for ours before the flush, which comes from us.
    setup.peer.client_event("r2", "not-chat").await;
    setup.peer.client_event("r1", "chat").await;
    flush(&setup).await;
    assert_eq!(
        setup.peer.client_event("r1", "everyone").await,
        json!([1, {"$bin": "cafe"}])
    );
    assert_eq!(setup.peer.received("r1"), ["everyone", "chat", "flush"]);
    assert_eq!(setup.peer.received("r2"), ["everyone", "not-chat", "flush"]);

    // Volatile: delivered to clients with nothing waiting to be sent (ours
    // are idle now), as Node would.
    setup
        .peer
        .ok(json!({"cmd": "emit", "rooms": [], "except": [], "ev": "volatile", "volatile": true}))
        .await;
    setup.peer.client_event("r1", "volatile").await;
    setup.peer.client_event("r2", "volatile").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_sockets_lists_the_sockets_of_both_servers() {
    let mut setup = setup().await;
    let ours = setup
        .rust
        .io
        .of("/")
        .to("chat")
        .fetch_sockets()
        .await
        .expect("fetch");
    let mut found: Vec<(String, Value)> = ours
        .iter()
        .map(|s| (s.rooms().len().to_string(), s.data().clone()))
        .collect();
    found.sort_by_key(|(_, data)| data.to_string());
    assert_eq!(
        found,
        [
            ("2".to_owned(), json!({"server": "node"})),
            ("2".to_owned(), json!({"server": "rust"}))
        ]
    );
    let node_socket = ours.iter().find(|s| s.data()["server"] == "node").unwrap();
    assert!(node_socket.rooms().contains(&"chat".to_owned()));
    assert!(!node_socket.handshake().url.is_empty());

    let theirs = setup
        .peer
        .ok(json!({"cmd": "fetchSockets", "rooms": [], "except": ["chat"]}))
        .await;
    let theirs = theirs.as_array().unwrap();
    assert_eq!(theirs.len(), 2, "{theirs:?}");
    let rust_socket = theirs
        .iter()
        .find(|s| s["data"]["server"] == "rust")
        .unwrap();
    assert_eq!(rust_socket["rooms"].as_array().unwrap().len(), 1);
    assert!(
        rust_socket["handshake"]["url"]
            .as_str()
            .unwrap()
            .starts_with("/socket.io/")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_emit_with_acks_works_both_ways() {
    let mut setup = setup().await;
    let replies = setup
        .rust
        .io
        .of("/")
        .server_side_emit_with_ack(
            "ping-server",
            vec![json!("from-rust"), json!(1)],
            Duration::from_secs(3),
        )
        .await
        .expect("every server replies");
    assert_eq!(replies, [Payload::from("node-pong")]);
    let event = setup
        .peer
        .event("Node's server-side handler", |e| {
            e["event"] == "server-event"
        })
        .await;
    assert_eq!(event["args"], json!(["from-rust", 1]));

    let replies = setup
        .peer
        .ok(json!({"cmd": "serverSideEmit", "ev": "ping-server", "args": ["from-node"], "ack": true}))
        .await;
    assert_eq!(replies, json!(["rust-pong"]));
    let event = setup.rust.server_event("ping-server").await;
    assert_eq!(event.payload.args, [json!("from-node")]);

    setup
        .peer
        .ok(json!({"cmd": "serverSideEmit", "ev": "hello", "args": [{"no": "ack"}]}))
        .await;
    let event = setup.rust.server_event("hello").await;
    assert_eq!(event.payload.args, [json!({"no": "ack"})]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_with_acks_collects_the_replies_of_both_servers_clients() {
    let mut setup = setup().await;
    let replies = setup
        .rust
        .io
        .of("/")
        .to("chat")
        .timeout(Duration::from_secs(3))
        .emit_with_ack("ask", "question")
        .await;
    assert!(replies.complete, "{replies:?}");
    assert_eq!(replies.expected, 2);
    let answers = sorted_first_args(&replies.replies);
    assert_eq!(answers, [json!("n1-ack"), json!("r1-ack")]);

    let answers = setup
        .peer
        .ok(json!({"cmd": "emitWithAck", "rooms": [], "except": [], "ev": "ask", "args": [1]}))
        .await;
    let mut answers: Vec<String> = answers
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    answers.sort();
    assert_eq!(answers, ["n1-ack", "n2-ack", "r1-ack", "r2-ack"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_emitter_and_node_requests_reach_our_sockets() {
    let mut setup = setup().await;
    setup
        .peer
        .ok(json!({"cmd": "emitter", "rooms": ["chat"], "except": [], "ev": "from-emitter", "args": [{"$bin": "01"}]}))
        .await;
    assert_eq!(
        setup.peer.client_event("r1", "from-emitter").await,
        json!([{"$bin": "01"}])
    );
    // Node makes our sockets not in chat join `lobby`, then speaks to it.
    setup
        .peer
        .ok(json!({"cmd": "socketsJoin", "rooms": [], "except": ["chat"], "join": "lobby"}))
        .await;
    setup
        .peer
        .ok(json!({"cmd": "emitter", "rooms": ["lobby"], "except": [], "ev": "lobby", "args": []}))
        .await;
    setup.peer.client_event("r2", "lobby").await;
    flush(&setup).await;
    assert_eq!(setup.peer.received("r1"), ["from-emitter", "flush"]);
    assert_eq!(setup.peer.received("r2"), ["lobby", "flush"]);

    setup
        .peer
        .ok(json!({"cmd": "disconnectSockets", "rooms": ["lobby"], "except": []}))
        .await;
    let event = setup
        .peer
        .event("r2 to be disconnected by Node", |e| {
            e["event"] == "client-disconnect" && e["name"] == "r2"
        })
        .await;
    assert_eq!(event["reason"], "io server disconnect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_requests_make_node_sockets_join_and_disconnect() {
    let setup = setup().await;
    let io = &setup.rust.io;
    io.of("/")
        .broadcast()
        .except("chat")
        .sockets_join(["lobby"]);
    io.to("lobby").emit("lobby", ());
    flush(&setup).await;
    assert_eq!(setup.peer.received("n2"), ["lobby", "flush"]);
    assert_eq!(setup.peer.received("r2"), ["lobby", "flush"]);
    assert_eq!(setup.peer.received("n1"), ["flush"]);

    io.to("chat").disconnect_sockets(false);
    for name in ["n1", "r1"] {
        setup
            .peer
            .event(&format!("{name} to be disconnected"), |e| {
                e["event"] == "client-disconnect" && e["name"] == name
            })
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_on_the_requesters_own_channel_reach_node() {
    let redis = RedisServer::start().await;
    let mut peer = NodePeer::start(redis.port).await;
    let config =
        iocluster_redis::RedisAdapterConfig::default().publish_on_specific_response_channel(true);
    let rust = RustServer::start_with(&redis.url(), config).await;
    let url = rust.url();
    let id = peer.connect("r1", &url).await;
    let sockets = peer
        .ok(json!({"cmd": "fetchSockets", "rooms": [], "except": []}))
        .await;
    assert_eq!(sockets[0]["id"], json!(id));
    let replies = peer
        .ok(json!({"cmd": "serverSideEmit", "ev": "ping-server", "args": [], "ack": true}))
        .await;
    assert_eq!(replies, json!(["rust-pong"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_rooms_and_old_sockets_requests_include_ours() {
    let redis = RedisServer::start().await;
    let mut peer = NodePeer::start(redis.port).await;
    let rust = RustServer::start(&redis.url()).await;
    let url = rust.url();
    let id = peer.connect("r1", &url).await;
    peer.join("r1", "rust-room").await;
    let rooms = peer.ok(json!({"cmd": "allRooms"})).await;
    let mut expected = vec![id.clone(), "rust-room".to_owned()];
    expected.sort();
    assert_eq!(rooms, json!(expected));
    // No Node API sends SOCKETS any more (adapter.sockets() is local), but
    // older servers do: answer it as Node does.
    let subscriber = iocluster_redis::connect_subscriber(&redis.url())
        .await
        .unwrap();
    let mut messages = subscriber.message_rx();
    subscriber.subscribe("socket.io-response#/#").await.unwrap();
    let client = iocluster_redis::connect_client(&redis.url()).await.unwrap();
    let request = r#"{"uid":"old","requestId":"req123","type":0,"rooms":["rust-room"]}"#;
    let _: i64 = client
        .publish("socket.io-request#/#", request)
        .await
        .unwrap();
    let response = within(WAIT, "the SOCKETS response", messages.recv())
        .await
        .unwrap();
    let response: Value = serde_json::from_str(&response.value.as_string().unwrap()).unwrap();
    // Node answers too (its own, empty, list): take ours.
    assert_eq!(response["requestId"], "req123");
    let ours = if response["sockets"] == json!([]) {
        let next = within(WAIT, "our SOCKETS response", messages.recv())
            .await
            .unwrap();
        serde_json::from_str::<Value>(&next.value.as_string().unwrap()).unwrap()
    } else {
        response
    };
    assert_eq!(ours, json!({"requestId": "req123", "sockets": [id]}));
}
