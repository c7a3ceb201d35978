//! The (non-sharded) adapter on a Redis Cluster of three masters, next to
//! a Node server whose @socket.io/redis-adapter uses ioredis `Cluster`
//! clients: `PUBLISH` reaches every node of a cluster, so broadcasts cross;
//! `PUBSUB NUMSUB` counts one node's subscribers only, so the server count
//! is the sum over the nodes (as Node's) — with a count of one node, a
//! request would wait for too few or too many answers.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

mod support;

use iocluster_testkit::{NodePeer, RedisCluster, WAIT, within};
use serde_json::json;
use support::RustServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_redis_cluster_servers_count_and_reach_each_other() {
    let cluster = RedisCluster::start().await;
    // Two of ours, so that subscribers sit on more than one node.
    let rust = RustServer::start(&cluster.url()).await;
    let other = RustServer::start(&cluster.url()).await;
    let mut peer = NodePeer::start_on_cluster(cluster.ports[1]).await;

    within(WAIT, "every server to count three", async {
        loop {
            let ours = rust.io.of("/").server_count().await;
            let node = peer.ok(json!({"cmd": "serverCount"})).await;
            if ours == 3 && node == json!(3) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(other.io.of("/").server_count().await, 3);

    let (node_url, rust_url, other_url) = (peer.url(), rust.url(), other.url());
    peer.connect("n1", &node_url).await;
    peer.connect("r1", &rust_url).await;
    peer.connect("o1", &other_url).await;
    peer.join("n1", "chat").await;
    peer.join("o1", "chat").await;

    // Broadcasts both ways.
    rust.io.to("chat").emit("from-rust", "hi");
    peer.client_event("n1", "from-rust").await;
    peer.client_event("o1", "from-rust").await;
    peer.ok(json!({"cmd": "emit", "ev": "from-node", "args": [1]}))
        .await;
    for name in ["n1", "r1", "o1"] {
        assert_eq!(peer.client_event(name, "from-node").await, json!([1]));
    }

    // Requests wait for every other server's answer, and get them.
    let sockets = within(
        WAIT,
        "fetch_sockets over the cluster",
        rust.io.of("/").to("chat").fetch_sockets(),
    )
    .await
    .expect("fetch_sockets");
    let mut data: Vec<String> = sockets.iter().map(|s| s.data().to_string()).collect();
    data.sort();
    assert_eq!(data, [r#"{"server":"node"}"#, r#"{"server":"rust"}"#]);
    let theirs = peer
        .ok(json!({"cmd": "fetchSockets", "rooms": ["chat"]}))
        .await;
    assert_eq!(theirs.as_array().map(Vec::len), Some(2), "{theirs}");
}
