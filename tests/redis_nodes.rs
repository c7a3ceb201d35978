//! Two iocluster nodes (masters with 2 workers each) synced by a Redis
//! server: broadcasts reach every client of both nodes, and `iocluster emit`
//! reaches them from outside.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

mod support;

use std::time::Duration;

use iocluster_testkit::{
    Master, PollingSession, RedisServer, one_cluster_at_a_time, run_on_big_stack, within,
};
use support::iocluster_bin;

/// A connected Socket.IO client over polling.
async fn client(master: &Master) -> PollingSession {
    let session = PollingSession::open(master.addr).await.expect("handshake");
    session.post(&["40"]).await.expect("CONNECT");
    session
        .get_until(|p| p.starts_with("40{"))
        .await
        .expect("CONNECT answered");
    session
}

#[test]
fn broadcasts_and_the_emit_command_reach_clients_of_both_nodes() {
    run_on_big_stack(two_nodes_scenario);
}

async fn two_nodes_scenario() {
    let _serial = one_cluster_at_a_time().await;
    let redis = RedisServer::start().await;
    let url = redis.url();
    let a = Master::start(
        iocluster_bin(),
        2,
        &["--redis", &url, "--balance", "round-robin"],
    )
    .await;
    let b = Master::start(
        iocluster_bin(),
        2,
        &["--redis", &url, "--balance", "round-robin"],
    )
    .await;
    // Two clients per node: both workers of each node.
    let mut clients = Vec::new();
    for master in [&a, &b] {
        for _ in 0..2 {
            clients.push(client(master).await);
        }
    }
    // Each worker subscribes when its namespace is created; a broadcast is
    // retried until the first one has crossed, then every client must see
    // exactly that one.
    let sender = &clients[0];
    let mut round = 0;
    let crossed = within(
        Duration::from_secs(10),
        "a broadcast to cross nodes",
        async {
            loop {
                round += 1;
                let marker = format!("42[\"broadcast\",\"round-{round}\"]");
                sender
                    .post(&[&format!("42[\"broadcast\",\"round-{round}\"]")])
                    .await
                    .expect("broadcast");
                let last = &clients[3];
                let got = tokio::time::timeout(
                    Duration::from_millis(500),
                    last.get_until(|p| p == marker),
                )
                .await;
                if got.is_ok() {
                    return marker;
                }
            }
        },
    )
    .await;
    for (i, client) in clients.iter().enumerate().take(3) {
        let marker = crossed.clone();
        client
            .get_until(move |p| p == marker)
            .await
            .unwrap_or_else(|e| panic!("client {i} did not get {crossed}: {e}"));
    }

    let status = std::process::Command::new(iocluster_bin())
        .args(["emit", "--redis", &url, "broadcast", "\"from-cli\""])
        .status()
        .expect("iocluster emit runs");
    assert!(status.success(), "iocluster emit exits 0");
    for (i, client) in clients.iter().enumerate() {
        client
            .get_until(|p| p == "42[\"broadcast\",\"from-cli\"]")
            .await
            .unwrap_or_else(|e| panic!("client {i} did not get the emitted event: {e}"));
    }
}
