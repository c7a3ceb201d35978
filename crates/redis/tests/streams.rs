//! The streams adapter next to a Node socket.io 4.8 server with
//! @socket.io/redis-streams-adapter 0.2 on one `redis-server`: two
//! iocluster servers and the Node server act as one (broadcasts, rooms,
//! acks, requests), sessions persisted by either side are restored by the
//! other with the broadcasts they missed, and garbage in the stream is
//! skipped.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

mod support;

use std::sync::Arc;
use std::time::Duration;

use iocluster_redis::RedisStreamsAdapterConfig;
use iocluster_socketio::RecoveryConfig;
use iocluster_testkit::{NodePeer, RedisServer, WAIT, WsClient, redis_cli, within};
use serde_json::{Value, json};
use support::fleet::Fleet;
use support::{Factory, RustServer};

async fn fleet() -> Fleet {
    let redis = RedisServer::start().await;
    let a = RustServer::start_streams(&redis.url(), RedisStreamsAdapterConfig::default()).await;
    let b = RustServer::start_streams(&redis.url(), RedisStreamsAdapterConfig::default()).await;
    let peer = NodePeer::start_streams(redis.port).await;
    Fleet::gather(Box::new(redis), a, b, peer).await
}

/// Arguments without the recovery offset every recorded broadcast ends
/// with (a stream entry id).
fn without_offset(args: Value) -> Value {
    let mut args = args.as_array().cloned().expect("arguments");
    let offset = args.pop().expect("an offset");
    assert!(
        offset.as_str().is_some_and(|o| {
            let (ms, seq) = o.split_once('-').unwrap_or_default();
            !ms.is_empty() && ms.bytes().chain(seq.bytes()).all(|b| b.is_ascii_digit())
        }),
        "the last argument is a stream id: {offset}"
    );
    Value::Array(args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_reach_every_targeted_client_of_rust_and_node_servers_once() {
    let mut fleet = fleet().await;
    fleet.broadcast_from_every_origin().await;
    // One stream: each origin's markers, written last, come after the rest
    // of its broadcasts on every server.
    fleet.wait_for_markers().await;
    assert_eq!(
        without_offset(fleet.peer.client_event("b1", "chat-a").await),
        json!(["hi", {"$bin": "0102"}])
    );
    assert_eq!(
        without_offset(fleet.peer.client_event("a1", "chat-n").await),
        json!([{"$bin": "0102"}])
    );
    assert_eq!(
        without_offset(fleet.peer.client_event("n2", "all-b").await),
        json!([1, {"x": "y"}])
    );
    fleet.assert_each_broadcast_reached_exactly_its_targets("streams");
    // Our clients get every broadcast in the stream's order, whoever wrote
    // it (Node's get their own server's broadcasts as soon as its `XADD`
    // answers, ahead of earlier entries it has not read yet).
    for name in ["a1", "a2", "b1", "b2"] {
        let offsets: Vec<String> = fleet
            .peer
            .received_with_args(name)
            .into_iter()
            .filter_map(|(_, args)| args.as_array()?.last()?.as_str().map(str::to_owned))
            .collect();
        let parsed: Vec<(u64, u64)> = offsets
            .iter()
            .map(|o| {
                let (ms, seq) = o.split_once('-').unwrap();
                (ms.parse().unwrap(), seq.parse().unwrap())
            })
            .collect();
        assert!(
            parsed.windows(2).all(|w| w[0] < w[1]),
            "{name}: {offsets:?}"
        );
    }
    drop(fleet.redis);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_and_acks_cross_between_our_servers_and_node() {
    let mut fleet = fleet().await;
    fleet.fetch_sockets_both_ways().await;
    fleet.server_side_emits_both_ways().await;
    fleet.broadcasts_with_acks_both_ways().await;

    // Joins requested by Node, disconnects requested by us.
    fleet
        .peer
        .ok(json!({"cmd": "socketsJoin", "rooms": [], "except": ["chat"], "join": "lobby"}))
        .await;
    // The join went into the stream before this broadcast: every server
    // applies it first.
    fleet
        .peer
        .ok(json!({"cmd": "emit", "rooms": ["lobby"], "except": [], "ev": "lobby"}))
        .await;
    for name in ["n2", "a2", "b2"] {
        fleet.peer.client_event(name, "lobby").await;
    }
    fleet.b.io.to("lobby").disconnect_sockets(false);
    fleet.disconnected(&["n2", "a2", "b2"]).await;
    for name in ["n1", "a1", "b1"] {
        assert_eq!(fleet.count(name, "lobby"), 0, "{name} is not in lobby");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_stream_entries_are_counted_and_skipped() {
    let redis = RedisServer::start().await;
    let config = RedisStreamsAdapterConfig::default().stream_name("robust");
    let a = RustServer::start_streams(&redis.url(), config.clone()).await;
    let b = RustServer::start_streams(&redis.url(), config).await;
    let mut peer = NodePeer::start(redis.port).await;
    peer.connect("a1", &a.url()).await;
    let Factory::Streams(factory) = a.factory.clone() else {
        unreachable!("a streams server")
    };
    let garbage: [&[&str]; 10] = [
        &["foo", "bar"],
        &["uid", "x", "type", "3"],
        &["uid", "x", "nsp", "/", "type", "99"],
        &["uid", "x", "nsp", "/", "type", "three"],
        &["uid", "x", "nsp", "/", "type", "3", "data", "{not json"],
        &["uid", "x", "nsp", "/", "type", "3", "data", "!!!not base64"],
        &["uid", "x", "nsp", "/", "type", "3", "data", "kA=="],
        &[
            "uid",
            "x",
            "nsp",
            "/",
            "type",
            "3",
            "data",
            r#"{"packet":{"type":2}}"#,
        ],
        &[
            "uid",
            "x",
            "nsp",
            "/",
            "type",
            "9",
            "data",
            r#"{"packet":"not an array"}"#,
        ],
        &[
            "uid",
            "x",
            "nsp",
            "/",
            "type",
            "3",
            "data",
            r#"{"opts":{}}"#,
        ],
    ];
    for fields in garbage {
        let mut args = vec!["XADD", "robust", "*"];
        args.extend_from_slice(fields);
        redis_cli(redis.port, &args).await;
    }
    within(WAIT, "every garbage entry to be counted", async {
        while factory.malformed_entries() < garbage.len() as u64 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(factory.malformed_entries(), garbage.len() as u64);
    // Entries of namespaces this server does not have are no garbage.
    redis_cli(
        redis.port,
        &[
            "XADD", "robust", "*", "uid", "x", "nsp", "/other", "type", "2",
        ],
    )
    .await;
    b.io.emit("still-alive", json!(1));
    assert_eq!(
        without_offset(peer.client_event("a1", "still-alive").await),
        json!([1])
    );
    assert_eq!(factory.malformed_entries(), garbage.len() as u64);
}

/// The number `n` of a `tick(n)` event packet.
fn tick(packet: &str) -> Option<u64> {
    let event: Value = serde_json::from_str(packet.strip_prefix("42")?).ok()?;
    (event[0] == "tick").then(|| event[1].as_u64())?
}

/// Reads `client`'s packets until it has `n` ticks; them.
async fn ticks(client: &mut WsClient, n: usize) -> Vec<u64> {
    let mut seen = Vec::new();
    within(WAIT, &format!("{n} ticks"), async {
        while seen.len() < n {
            if let Some(t) = tick(&client.next_packet().await.expect("a packet")) {
                seen.push(t);
            }
        }
    })
    .await;
    seen
}

/// Waits until Redis holds session `pid` under Node's key.
async fn session_in_redis(port: u16, pid: &str) {
    let key = format!("sio:session:{pid}");
    within(WAIT, "the session to be in Redis", async {
        while redis_cli(port, &["EXISTS", &key]).await != "1" {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// Node's session in Redis: base64 msgpack, with Node's expiry.
async fn assert_nodes_session_format(port: u16, pid: &str, sid: &str) {
    let key = format!("sio:session:{pid}");
    let raw = redis_cli(port, &["GET", &key]).await;
    let ttl: u64 = redis_cli(port, &["PTTL", &key]).await.parse().unwrap();
    assert!(
        ttl > 0 && ttl <= 180_000,
        "PX of the recovery window (+ refresh): {ttl}"
    );
    let (session, _) = iocluster_redis::msgpack::decode(&base64_decode(&raw)).expect("msgpack");
    assert_eq!(session["sid"], sid);
    assert_eq!(session["pid"], pid);
    assert!(session["rooms"].as_array().unwrap().contains(&json!(sid)));
}

fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes().filter(|c| *c != b'=') {
        let v = ALPHABET.iter().position(|a| *a == c).expect("base64") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_node_persisted_is_restored_by_us_with_every_broadcast_it_missed() {
    let redis = RedisServer::start().await;
    let a = RustServer::start_streams(&redis.url(), RedisStreamsAdapterConfig::default()).await;
    let peer = NodePeer::start_streams(redis.port).await;
    let node: std::net::SocketAddr = format!("127.0.0.1:{}", peer.port).parse().unwrap();
    let mut client = WsClient::open(node).await.unwrap();
    client.connect_namespace("40").await.unwrap();
    let (id, pid) = (
        client.id.clone(),
        client.recovery_pid.clone().expect("a pid"),
    );
    for n in 0..3 {
        a.io.emit("tick", json!(n));
    }
    assert_eq!(ticks(&mut client, 3).await, [0, 1, 2]);
    let offset = client.offset.clone().expect("ticks carry offsets");
    // The transport closes: Node keeps the session for recovery.
    drop(client);
    session_in_redis(redis.port, &pid).await;
    assert_nodes_session_format(redis.port, &pid, &id).await;
    for n in 3..6 {
        a.io.emit("tick", json!(n));
    }
    let mut back = WsClient::open(a.addr).await.unwrap();
    let auth = json!({ "pid": pid, "offset": offset });
    back.connect_namespace(&format!("40{auth}")).await.unwrap();
    assert_eq!(back.id, id, "the same socket id: recovered");
    assert_eq!(back.recovery_pid.as_deref(), Some(pid.as_str()));
    a.io.emit("tick", json!(6));
    assert_eq!(ticks(&mut back, 4).await, [3, 4, 5, 6]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_we_persisted_is_restored_by_node_with_every_broadcast_it_missed() {
    let redis = RedisServer::start().await;
    let a = RustServer::start_streams(&redis.url(), RedisStreamsAdapterConfig::default()).await;
    let mut peer = NodePeer::start_streams(redis.port).await;
    let node: std::net::SocketAddr = format!("127.0.0.1:{}", peer.port).parse().unwrap();
    let mut client = WsClient::open(a.addr).await.unwrap();
    client.connect_namespace("40").await.unwrap();
    let (id, pid) = (
        client.id.clone(),
        client.recovery_pid.clone().expect("a pid"),
    );
    client.send(r#"420["join","r"]"#).await.unwrap();
    while client.next_packet().await.unwrap() != r#"430["joined"]"# {}
    let emit = |n: u64, rooms: Value| json!({"cmd": "emit", "rooms": rooms, "except": [], "ev": "tick", "args": [n]});
    for n in 0..3 {
        peer.ok(emit(n, json!([]))).await;
    }
    assert_eq!(ticks(&mut client, 3).await, [0, 1, 2]);
    let offset = client.offset.clone().expect("ticks carry offsets");
    drop(client);
    session_in_redis(redis.port, &pid).await;
    assert_nodes_session_format(redis.port, &pid, &id).await;
    // Missed: to all, to its room; not: to another room.
    peer.ok(emit(3, json!([]))).await;
    peer.ok(emit(99, json!(["elsewhere"]))).await;
    peer.ok(emit(4, json!(["r"]))).await;
    let mut back = WsClient::open(node).await.unwrap();
    let auth = json!({ "pid": pid, "offset": offset });
    back.connect_namespace(&format!("40{auth}")).await.unwrap();
    assert_eq!(back.id, id, "the same socket id: recovered by Node");
    assert_eq!(back.recovery_pid.as_deref(), Some(pid.as_str()));
    let connection = peer
        .event("Node's server to accept the socket", |e| {
            e["event"] == "server-connection" && e["id"] == id.as_str()
        })
        .await;
    assert_eq!(connection["recovered"], json!(true));
    // Its rooms came back with it.
    peer.ok(emit(5, json!(["r"]))).await;
    assert_eq!(ticks(&mut back, 3).await, [3, 4, 5]);
}

/// A recovering socket held in a middleware (`skip_middlewares` off) while
/// other servers broadcast: the reader of its server waits for it, so the
/// broadcasts written meanwhile reach it live, after the missed ones, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_written_while_a_recovered_socket_connects_reach_it_exactly_once() {
    let redis = RedisServer::start().await;
    let recovery = RecoveryConfig {
        skip_middlewares: false,
        ..RecoveryConfig::default()
    };
    let a = RustServer::start_streams_with(
        &redis.url(),
        RedisStreamsAdapterConfig::default(),
        recovery,
    )
    .await;
    let b = RustServer::start_streams(&redis.url(), RedisStreamsAdapterConfig::default()).await;
    let (entered_tx, mut entered) = tokio::sync::mpsc::unbounded_channel();
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let releasing = Arc::clone(&release);
    a.io.of("/").use_middleware(move |socket| {
        let recovering = socket.auth().get("pid").is_some();
        let (entered, release) = (entered_tx.clone(), Arc::clone(&releasing));
        async move {
            if recovering {
                let _ = entered.send(());
                let _ = release.acquire().await;
            }
            Ok(())
        }
    });
    let mut client = WsClient::open(a.addr).await.unwrap();
    client.connect_namespace("40").await.unwrap();
    let (id, pid) = (client.id.clone(), client.recovery_pid.clone().unwrap());
    let mut watcher = WsClient::open(b.addr).await.unwrap();
    watcher.connect_namespace("40").await.unwrap();
    for n in 0..3 {
        b.io.emit("tick", json!(n));
    }
    assert_eq!(ticks(&mut client, 3).await, [0, 1, 2]);
    let offset = client.offset.clone().unwrap();
    drop(client);
    session_in_redis(redis.port, &pid).await;
    for n in 3..5 {
        b.io.emit("tick", json!(n));
    }

    let mut back = WsClient::open(a.addr).await.unwrap();
    let auth = json!({ "pid": pid, "offset": offset });
    let connecting = tokio::spawn(async move {
        back.connect_namespace(&format!("40{auth}")).await.unwrap();
        back
    });
    within(
        WAIT,
        "the recovering socket in the middleware",
        entered.recv(),
    )
    .await;
    // Written while it waits; read by b (and a) meanwhile.
    for n in 5..7 {
        b.io.emit("tick", json!(n));
    }
    assert_eq!(ticks(&mut watcher, 7).await, [0, 1, 2, 3, 4, 5, 6]);
    release.add_permits(1);
    let mut back = within(WAIT, "the recovered CONNECT", connecting)
        .await
        .unwrap();
    assert_eq!(back.id, id, "recovered");
    b.io.emit("tick", json!(7));
    assert_eq!(ticks(&mut back, 5).await, [3, 4, 5, 6, 7]);
}
