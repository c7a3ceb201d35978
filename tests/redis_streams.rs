//! `--redis-streams URL --recovery`: nodes synced through one Redis stream
//! (Node's @socket.io/redis-streams-adapter wire) keep sessions and the
//! broadcasts they miss in Redis, so a client whose node was killed
//! recovers on another node — an iocluster node or a Node socket.io server
//! — with every broadcast it missed, exactly once, in order.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use iocluster_testkit::{
    Master, NodePeer, RedisServer, Signal, WAIT, WsClient, one_cluster_at_a_time, within,
};
use serde_json::{Value, json};
use support::{broadcast, iocluster_bin, tick};

/// Reads ticks until one satisfies `done`; every tick read, in order.
async fn read_ticks(client: &mut WsClient, mut done: impl FnMut(u64) -> bool) -> Vec<u64> {
    let mut seen = Vec::new();
    loop {
        let packet = client.next_packet().await.expect("a packet");
        if let Some(n) = tick(&packet) {
            seen.push(n);
            if done(n) {
                return seen;
            }
        }
    }
}

fn streams_args(url: &str) -> Vec<&str> {
    vec![
        "--redis-streams",
        url,
        "--recovery",
        "--balance",
        "round-robin",
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_of_a_killed_node_recovers_every_broadcast_on_another_node() {
    let _turn = one_cluster_at_a_time().await;
    let redis = RedisServer::start().await;
    let url = redis.url();
    let a = Master::start(iocluster_bin(), 2, &streams_args(&url)).await;
    let b = Master::start(iocluster_bin(), 2, &streams_args(&url)).await;
    let mut victim = WsClient::connect(a.addr).await.unwrap();
    let (id, pid) = (
        victim.id.clone(),
        victim.recovery_pid.clone().expect("recovery on: a pid"),
    );

    // A client of node B broadcasts numbers, each after the last was
    // acked, until told to stop; it says the last one it sent.
    let stop = Arc::new(AtomicBool::new(false));
    let mut sender = WsClient::connect(b.addr).await.unwrap();
    let stopping = Arc::clone(&stop);
    let sending = tokio::spawn(async move {
        let mut n = 0;
        loop {
            broadcast(&mut sender, n).await;
            if stopping.load(Ordering::Acquire) {
                return n;
            }
            n += 1;
        }
    });

    let mut seen = within(
        WAIT,
        "20 broadcasts on node A",
        read_ticks(&mut victim, |n| n >= 19),
    )
    .await;
    let offset = victim.offset.clone().expect("broadcasts carry offsets");
    // Node A dies without a word (its workers die with their master).
    a.signal(Signal::SIGKILL);
    while let Ok(packet) = victim.next_packet().await {
        if let Some(n) = tick(&packet) {
            seen.push(n);
        }
    }
    let offset = victim.offset.clone().unwrap_or(offset);
    drop(victim);

    // Back on node B, broadcasts still going.
    let mut back = WsClient::open(b.addr).await.unwrap();
    let auth = json!({ "pid": pid, "offset": offset });
    back.connect_namespace(&format!("40{auth}")).await.unwrap();
    assert_eq!(back.id, id, "recovered: the same socket id");
    assert_eq!(
        back.recovery_pid.as_deref(),
        Some(pid.as_str()),
        "the same pid"
    );
    let resumed_at = seen.len();
    let mut more = 0;
    seen.extend(
        within(
            WAIT,
            "20 more broadcasts on node B",
            read_ticks(&mut back, |_| {
                more += 1;
                more >= 20
            }),
        )
        .await,
    );
    stop.store(true, Ordering::Release);
    let last = within(WAIT, "the sender to stop", sending).await.unwrap();
    if seen.last() != Some(&last) {
        seen.extend(
            within(
                WAIT,
                "the last broadcast",
                read_ticks(&mut back, |n| n == last),
            )
            .await,
        );
    }
    let expected: Vec<u64> = (0..=last).collect();
    assert_eq!(
        seen, expected,
        "every broadcast exactly once, in order (recovered at index {resumed_at})"
    );
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_of_a_killed_node_recovers_on_a_node_socket_io_server() {
    let _turn = one_cluster_at_a_time().await;
    let redis = RedisServer::start().await;
    let url = redis.url();
    let a = Master::start(iocluster_bin(), 2, &streams_args(&url)).await;
    let mut peer = NodePeer::start_streams(redis.port).await;
    let mut victim = WsClient::connect(a.addr).await.unwrap();
    let (id, pid) = (
        victim.id.clone(),
        victim.recovery_pid.clone().expect("recovery on: a pid"),
    );
    victim.send(r#"420["join","r"]"#).await.unwrap();
    while victim.next_packet().await.unwrap() != "430[]" {}
    let emit = |n: u64, rooms: Value| json!({"cmd": "emit", "rooms": rooms, "except": [], "ev": "broadcast", "args": [n]});

    for n in 0..5 {
        peer.ok(emit(n, json!([]))).await;
    }
    let seen = within(
        WAIT,
        "5 broadcasts on node A",
        read_ticks(&mut victim, |n| n == 4),
    )
    .await;
    assert_eq!(seen, [0, 1, 2, 3, 4]);
    let offset = victim.offset.clone().expect("broadcasts carry offsets");
    a.signal(Signal::SIGKILL);
    while victim.next_packet().await.is_ok() {}
    drop(victim);

    // Missed: to everyone, to its room; not to another room.
    peer.ok(emit(5, json!([]))).await;
    peer.ok(emit(99, json!(["elsewhere"]))).await;
    peer.ok(emit(6, json!(["r"]))).await;
    peer.ok(emit(7, json!([]))).await;

    let node = format!("127.0.0.1:{}", peer.port).parse().unwrap();
    let mut back = WsClient::open(node).await.unwrap();
    let auth = json!({ "pid": pid, "offset": offset });
    back.connect_namespace(&format!("40{auth}")).await.unwrap();
    assert_eq!(back.id, id, "recovered by Node: the same socket id");
    assert_eq!(back.recovery_pid.as_deref(), Some(pid.as_str()));
    let accepted = peer
        .event("Node to accept the socket", |e| {
            e["event"] == "server-connection" && e["id"] == id.as_str()
        })
        .await;
    assert_eq!(accepted["recovered"], json!(true));
    // Live again, in its room.
    peer.ok(emit(8, json!(["r"]))).await;
    let missed = within(
        WAIT,
        "the missed broadcasts",
        read_ticks(&mut back, |n| n == 8),
    )
    .await;
    assert_eq!(missed, [5, 6, 7, 8]);
}
