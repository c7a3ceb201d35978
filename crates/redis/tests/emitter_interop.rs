//! Our [`Emitter`] against a Node socket.io 4.8 server with
//! @socket.io/redis-adapter: what it publishes reaches that server's
//! clients, in rooms and with exceptions, and its requests act on them.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

use bytes::Bytes;
use iocluster_redis::{Emitter, connect_client};
use iocluster_socketio::Payload;
use iocluster_testkit::{NodePeer, RedisServer};
use serde_json::json;

struct Setup {
    _redis: RedisServer,
    peer: NodePeer,
    emitter: Emitter,
}

/// Redis, the Node peer with clients `a` (in room1), `b` (in room1 and
/// room2) and `c` (in no room), and our emitter.
async fn setup() -> Setup {
    let redis = RedisServer::start().await;
    let mut peer = NodePeer::start(redis.port).await;
    let url = peer.url();
    for name in ["a", "b", "c"] {
        peer.connect(name, &url).await;
    }
    peer.join("a", "room1").await;
    peer.join("b", "room1").await;
    peer.join("b", "room2").await;
    let client = connect_client(&redis.url())
        .await
        .expect("connect to redis");
    Setup {
        _redis: redis,
        peer,
        emitter: Emitter::new(client),
    }
}

/// Sends a last event to everyone: once a client has it, it has every
/// event sent before (one Redis channel order, one connection).
async fn flush(setup: &Setup) {
    setup.emitter.emit("flush", ()).await.expect("emit");
    for name in ["a", "b", "c"] {
        setup.peer.client_event(name, "flush").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emitter_reaches_every_node_client_with_json_and_binary_arguments() {
    let setup = setup().await;
    let payload = Payload::new(vec![json!(1), json!({"two": [2.5, null, "three"]})])
        .with_binary(Bytes::from_static(&[0, 1, 255]));
    setup.emitter.emit("hello", payload).await.expect("emit");
    for name in ["a", "b", "c"] {
        let args = setup.peer.client_event(name, "hello").await;
        assert_eq!(
            args,
            json!([1, {"two": [2.5, null, "three"]}, {"$bin": "0001ff"}])
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emitter_reaches_only_the_targeted_rooms_minus_the_excepted_ones() {
    let setup = setup().await;
    let e = &setup.emitter;
    e.to("room1").emit("to-room1", "x").await.expect("emit");
    e.to("room1")
        .except("room2")
        .emit("room1-not-room2", ())
        .await
        .expect("emit");
    e.to("room2")
        .to("nowhere")
        .emit("room2-or-nowhere", ())
        .await
        .expect("emit");
    e.except("room1").emit("not-room1", ()).await.expect("emit");
    flush(&setup).await;
    let received = |name| setup.peer.received(name);
    assert_eq!(received("a"), ["to-room1", "room1-not-room2", "flush"]);
    assert_eq!(received("b"), ["to-room1", "room2-or-nowhere", "flush"]);
    assert_eq!(received("c"), ["not-room1", "flush"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emitter_reaches_a_namespace_and_volatile_events_still_arrive() {
    let mut setup = setup().await;
    let admin = setup.peer.url();
    setup
        .peer
        .ok(json!({"cmd": "connect", "name": "admin", "url": admin, "nsp": "/admin"}))
        .await;
    setup
        .emitter
        .of("admin")
        .emit("admin-only", ())
        .await
        .expect("emit");
    setup
        .emitter
        .volatile()
        .compress(false)
        .emit("volatile", ())
        .await
        .expect("emit");
    setup.peer.client_event("admin", "admin-only").await;
    flush(&setup).await;
    assert_eq!(setup.peer.received("c"), ["volatile", "flush"]);
    assert_eq!(setup.peer.received("admin"), ["admin-only"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emitter_requests_make_node_sockets_join_leave_and_disconnect() {
    let setup = setup().await;
    let e = &setup.emitter;
    // a and b are in room1; only a is not in room2.
    e.to("room1")
        .except("room2")
        .sockets_join(["joined"])
        .await
        .expect("join");
    e.to("room2").sockets_leave(["room1"]).await.expect("leave");
    e.to("joined").emit("in-joined", ()).await.expect("emit");
    e.to("room1").emit("in-room1", ()).await.expect("emit");
    flush(&setup).await;
    assert_eq!(setup.peer.received("a"), ["in-joined", "in-room1", "flush"]);
    assert_eq!(setup.peer.received("b"), ["flush"]);

    e.to("room2")
        .disconnect_sockets(false)
        .await
        .expect("disconnect");
    let event = setup
        .peer
        .event("b to be disconnected", |e| {
            e["event"] == "client-disconnect" && e["name"] == "b"
        })
        .await;
    assert_eq!(event["reason"], "io server disconnect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emitter_server_side_emit_reaches_node_server_handlers() {
    let setup = setup().await;
    setup
        .emitter
        .server_side_emit("hello", vec![json!("world"), json!(1)])
        .await
        .expect("server side emit");
    let event = setup
        .peer
        .event("the Node server-side handler", |e| {
            e["event"] == "server-event"
        })
        .await;
    assert_eq!(event["name"], "hello");
    assert_eq!(event["args"], json!(["world", 1]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emitter_refuses_reserved_event_names() {
    let setup = setup().await;
    let error = setup.emitter.emit("connect", ()).await.unwrap_err();
    assert!(matches!(error, iocluster_redis::Error::ReservedEvent(_)));
}
