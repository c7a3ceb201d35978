//! The sharded adapter on a Redis Cluster of three masters, next to a Node
//! socket.io 4.8 server with `createShardedAdapter` (ioredis `Cluster`
//! clients with `shardedSubscribers`): two iocluster servers and the Node
//! server act as one, in each subscription mode.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

mod support;

use std::time::Duration;

use bytes::Bytes;
use iocluster_redis::fred::interfaces::{ClientLike, PubsubInterface};
use iocluster_redis::{ShardedRedisAdapterConfig, SubscriptionMode};
use iocluster_socketio::Payload;
use iocluster_testkit::{NodePeer, RedisCluster, RedisServer, WAIT, within};
use serde_json::{Value, json};
use support::fleet::Fleet;
use support::{Factory, RustServer};

async fn fleet(mode: SubscriptionMode) -> Fleet {
    let cluster = RedisCluster::start().await;
    let config = ShardedRedisAdapterConfig::default().subscription_mode(mode);
    let a = RustServer::start_sharded(&cluster.url(), config.clone()).await;
    let b = RustServer::start_sharded(&cluster.url(), config).await;
    let peer = NodePeer::start_sharded_on_cluster(cluster.ports[1], mode.as_str()).await;
    let mut fleet = Fleet::gather(Box::new(cluster), a, b, peer).await;
    if mode != SubscriptionMode::Static {
        // Every server has a socket in chat: each listens on its channel.
        wait_for_subscribers(&mut fleet, "socket.io#/#chat#", 3).await;
    }
    fleet
}

/// Waits until Redis counts `n` subscribers of the shard channel.
async fn wait_for_subscribers(fleet: &mut Fleet, channel: &str, n: u64) {
    within(WAIT, &format!("{n} subscribers of {channel}"), async {
        loop {
            let command = json!({"cmd": "shardNumsub", "channel": channel});
            if fleet.peer.ok(command).await == json!(n) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// From each origin (`a`, `b`, the Node server): a broadcast to all, to
/// `chat`, to all but `chat`, and to one socket of another server; then
/// markers on the namespace channel and on chat's (messages on different
/// shard channels are not ordered with each other). Every targeted client
/// gets each broadcast exactly once, no other client gets it.
async fn broadcasts_reach_every_targeted_client_exactly_once(mode: SubscriptionMode) {
    let mut fleet = fleet(mode).await;
    fleet.broadcast_from_every_origin().await;
    fleet.wait_for_markers().await;
    fleet.peer.client_event("n2", "direct-a").await;
    fleet.peer.client_event("a2", "direct-b").await;
    fleet.peer.client_event("b2", "direct-n").await;

    assert_eq!(
        fleet.peer.client_event("b1", "chat-a").await,
        json!(["hi", {"$bin": "0102"}])
    );
    assert_eq!(
        fleet.peer.client_event("a1", "chat-n").await,
        json!([{"$bin": "0102"}])
    );
    assert_eq!(
        fleet.peer.client_event("n2", "all-b").await,
        json!([1, {"x": "y"}])
    );
    fleet.assert_each_broadcast_reached_exactly_its_targets(&format!("{mode:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_mode_broadcasts_reach_every_targeted_client_exactly_once() {
    broadcasts_reach_every_targeted_client_exactly_once(SubscriptionMode::Dynamic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_mode_broadcasts_reach_every_targeted_client_exactly_once() {
    broadcasts_reach_every_targeted_client_exactly_once(SubscriptionMode::Static).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_private_mode_broadcasts_reach_every_targeted_client_exactly_once() {
    broadcasts_reach_every_targeted_client_exactly_once(SubscriptionMode::DynamicPrivate).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_and_acks_cross_between_our_servers_and_node() {
    let mut fleet = fleet(SubscriptionMode::Dynamic).await;
    fleet.fetch_sockets_both_ways().await;
    fleet.server_side_emits_both_ways().await;
    fleet.broadcasts_with_acks_both_ways().await;

    // Joins and disconnects requested by Node and by us.
    fleet
        .peer
        .ok(json!({"cmd": "socketsJoin", "rooms": [], "except": ["chat"], "join": "lobby"}))
        .await;
    wait_for_subscribers(&mut fleet, "socket.io#/#lobby#", 3).await;
    fleet.a.io.to("lobby").emit("lobby", ());
    for name in ["n2", "a2", "b2"] {
        fleet.peer.client_event(name, "lobby").await;
    }
    fleet.b.io.to("lobby").disconnect_sockets(false);
    fleet.disconnected(&["n2", "a2", "b2"]).await;
    // The room is gone everywhere: every server left its channel.
    wait_for_subscribers(&mut fleet, "socket.io#/#lobby#", 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_sharded_channels_is_counted_and_dropped() {
    let redis = RedisServer::start().await;
    let config = ShardedRedisAdapterConfig::default().channel_prefix("robust");
    let a = RustServer::start_sharded(&redis.url(), config.clone()).await;
    let b = RustServer::start_sharded(&redis.url(), config).await;
    let mut peer = NodePeer::start(redis.port).await;
    peer.connect("a1", &a.url()).await;
    peer.join("a1", "room").await;
    let client = iocluster_redis::connect_client(&redis.url())
        .await
        .expect("connect");
    within(WAIT, "a to listen on the room's channel", async {
        loop {
            let reply: Vec<iocluster_redis::fred::types::Value> = client
                .pubsub_shardnumsub("robust#/#room#")
                .await
                .expect("SHARDNUMSUB");
            if reply.get(1).and_then(|v| v.as_u64()) == Some(1) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let garbage: [&[u8]; 9] = [
        b"",
        b"{not json",
        &[0xc1],
        &[0x93, 0xa1, b'x'],
        &[0xdd, 0xff, 0xff, 0xff, 0xff],
        br#"{"type":99,"uid":"x","nsp":"/"}"#,
        br#"{"type":3,"uid":"x","nsp":"/","data":{"packet":{"type":2}}}"#,
        br#"{"type":9,"uid":"x","nsp":"/","data":{"packet":"not an array"}}"#,
        br#"{"type":3,"uid":"x","nsp":"/","data":[1]}"#,
    ];
    let Factory::Sharded(factory) = a.factory.clone() else {
        unreachable!("a sharded server")
    };
    for channel in ["robust#/#", "robust#/#room#"] {
        for message in garbage {
            let _: i64 = client
                .spublish(channel, Bytes::from_static(message))
                .await
                .expect("SPUBLISH");
        }
    }
    within(WAIT, "every garbage message to be counted", async {
        while factory.malformed_messages() < 2 * garbage.len() as u64 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    b.io.to("room").emit("still-alive", json!(1));
    assert_eq!(peer.client_event("a1", "still-alive").await, json!([1]));
    let _ = client.quit().await;
}

/// Replaces the sender's uid and the request id (random, 16 hex characters
/// each on both sides) by fixed text, in JSON or msgpack bytes alike.
fn normalized(bytes: &[u8]) -> String {
    let (value, _) = if bytes.first() == Some(&b'{') {
        (
            serde_json::from_slice::<Value>(bytes).expect("JSON"),
            Vec::new(),
        )
    } else {
        iocluster_redis::msgpack::decode(bytes).expect("msgpack")
    };
    let mut text: Vec<u8> = bytes.to_vec();
    for (key, fixed) in [("uid", "U"), ("requestId", "R")] {
        let found = value
            .get(key)
            .or_else(|| value["data"].get(key))
            .and_then(Value::as_str);
        if let Some(id) = found {
            assert_eq!(id.len(), 16, "{key} {id} is 16 hex characters as Node's");
            let id = id.as_bytes();
            let fixed = fixed.repeat(16);
            while let Some(at) = text.windows(id.len()).position(|w| w == id) {
                text.splice(at..at + id.len(), fixed.bytes());
            }
        }
    }
    String::from_utf8_lossy(&text).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_messages_are_byte_identical_to_nodes() {
    use iocluster_redis::fred::interfaces::EventInterface;
    let redis = RedisServer::start().await;
    let static_mode =
        ShardedRedisAdapterConfig::default().subscription_mode(SubscriptionMode::Static);
    let rust = RustServer::start_sharded(&redis.url(), static_mode).await;
    let mut peer = NodePeer::start_sharded(redis.port, "static").await;
    let listener = iocluster_redis::connect_subscriber(&redis.url())
        .await
        .expect("connect");
    let mut messages = listener.message_rx();
    listener
        .ssubscribe("socket.io#/#")
        .await
        .expect("SSUBSCRIBE");
    let io = &rust.io;
    let ns = io.of("/");
    let mut next = async || {
        let message = within(WAIT, "a message on socket.io#/#", messages.recv())
            .await
            .expect("a message");
        match message.value {
            iocluster_redis::fred::types::Value::Bytes(bytes) => bytes.to_vec(),
            iocluster_redis::fred::types::Value::String(s) => s.as_bytes().to_vec(),
            other => panic!("unexpected {other:?}"),
        }
    };
    let emit = |rooms: Value, except: Value, args: Value| json!({"cmd": "emit", "rooms": rooms, "except": except, "ev": "ev", "args": args});
    type Ours<'a> = Box<dyn Fn() + 'a>;
    let cases: Vec<(&str, Value, Ours)> = vec![
        (
            "broadcast",
            emit(
                json!([]),
                json!(["r"]),
                json!([1, "a", {"k": [true, null]}]),
            ),
            Box::new(|| {
                ns.except("r").emit(
                    "ev",
                    Payload::new(vec![json!(1), json!("a"), json!({"k": [true, null]})]),
                )
            }),
        ),
        (
            "binary broadcast to two rooms",
            emit(json!(["r", "s"]), json!([]), json!([{"$bin": "0102"}])),
            Box::new(|| {
                ns.to("r").to("s").emit(
                    "ev",
                    Payload::new(vec![]).with_binary(Bytes::from_static(&[1, 2])),
                )
            }),
        ),
        (
            "volatile broadcast",
            json!({"cmd": "emit", "rooms": ["r"], "except": [], "ev": "ev", "volatile": true}),
            Box::new(|| ns.to("r").volatile().emit("ev", ())),
        ),
        (
            "join",
            json!({"cmd": "socketsJoin", "rooms": ["r"], "except": ["s"], "join": "lobby"}),
            Box::new(|| ns.to("r").except("s").sockets_join(["lobby"])),
        ),
        (
            "disconnect",
            json!({"cmd": "disconnectSockets", "rooms": ["r"], "except": [], "close": true}),
            Box::new(|| ns.to("r").disconnect_sockets(true)),
        ),
        (
            "server-side emit",
            json!({"cmd": "serverSideEmit", "ev": "hello", "args": [{"a": 1}, {"$bin": "ff"}]}),
            Box::new(|| {
                ns.server_side_emit(
                    "hello",
                    Payload::new(vec![json!({"a": 1})]).with_binary(Bytes::from_static(&[0xff])),
                )
            }),
        ),
    ];
    for (what, theirs, ours) in cases {
        peer.ok(theirs).await;
        let node = normalized(&next().await);
        ours();
        let rust = normalized(&next().await);
        assert_eq!(rust, node, "{what}");
    }

    // Requests. The listener here counts as a server that never answers:
    // the requests time out, and are not waited for.
    peer.send(json!({"cmd": "fetchSockets", "rooms": ["r"], "except": [], "timeout": 300}))
        .await;
    let node = normalized(&next().await);
    let short = Duration::from_millis(300);
    let fetching = ns.to("r").timeout(short).fetch_sockets();
    let (_, ours) = tokio::join!(fetching, next());
    assert_eq!(normalized(&ours), node, "fetch sockets");

    peer.send(json!({"cmd": "serverSideEmit", "ev": "ping-server", "args": [2], "ack": true}))
        .await;
    let node = normalized(&next().await);
    let emitting = ns.server_side_emit_with_ack("ping-server", json!(2), short);
    let (_, ours) = tokio::join!(emitting, next());
    assert_eq!(normalized(&ours), node, "server-side emit with ack");

    peer.send(json!({"cmd": "emitWithAck", "rooms": ["r"], "except": [], "ev": "ask", "args": [], "timeout": 300}))
        .await;
    let node = normalized(&next().await);
    let asking = ns.to("r").timeout(short).emit_with_ack("ask", ());
    let (_, ours) = tokio::join!(asking, next());
    assert_eq!(normalized(&ours), node, "broadcast with acks");
    let _ = listener.quit().await;
}
