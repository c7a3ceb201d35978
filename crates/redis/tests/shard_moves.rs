//! A shard channel's slot moved to another node of the Redis Cluster (as
//! resharding does): Redis ends the subscriptions on the old node, and
//! our subscriber subscribes again on the new one (at the next slot check,
//! every 2 s; a check made while the nodes still disagree may see nothing
//! new, and the next one does), so broadcasts flow again.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

mod support;

use std::time::Duration;

use iocluster_redis::{ShardedRedisAdapterConfig, SubscriptionMode};
use iocluster_testkit::{NodePeer, RedisCluster, RedisServer, WAIT, redis_cli, within};
use serde_json::json;
use support::RustServer;

/// The node ids and ports of the cluster, and which one serves `slot`.
async fn owner_of(port: u16, slot: u16) -> (String, Vec<(String, u16)>) {
    let nodes = redis_cli(port, &["cluster", "nodes"]).await;
    let mut owner = None;
    let mut all = Vec::new();
    for line in nodes.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (id, addr) = (fields[0].to_owned(), fields[1]);
        let node_port: u16 = addr
            .split(['@', ':'])
            .nth(1)
            .and_then(|p| p.parse().ok())
            .expect("a port");
        for range in &fields[8..] {
            let (start, end) = match range.split_once('-') {
                Some((a, b)) => (a.parse::<u16>(), b.parse::<u16>()),
                None => (range.parse(), range.parse()),
            };
            if let (Ok(start), Ok(end)) = (start, end)
                && (start..=end).contains(&slot)
            {
                owner = Some(id.clone());
            }
        }
        all.push((id, node_port));
    }
    (owner.expect("a node serves the slot"), all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_follow_a_moved_slot() {
    let cluster = RedisCluster::start().await;
    let config = ShardedRedisAdapterConfig::default().subscription_mode(SubscriptionMode::Static);
    let a = RustServer::start_sharded(&cluster.url(), config.clone()).await;
    let b = RustServer::start_sharded(&cluster.url(), config).await;
    // The Node peer only drives a client here (its own Redis).
    let redis = RedisServer::start().await;
    let mut peer = NodePeer::start(redis.port).await;
    peer.connect("a1", &a.url()).await;
    b.io.emit("before", ());
    peer.client_event("a1", "before").await;

    let port = cluster.ports[0];
    let slot: u16 = redis_cli(port, &["cluster", "keyslot", "socket.io#/#"])
        .await
        .parse()
        .expect("a slot");
    let (source, nodes) = owner_of(port, slot).await;
    let (target, target_port) = nodes
        .iter()
        .find(|(id, _)| *id != source)
        .cloned()
        .expect("another node");
    let source_port = nodes
        .iter()
        .find(|(id, _)| *id == source)
        .map(|(_, port)| *port)
        .expect("the source's port");
    let slot = slot.to_string();
    redis_cli(
        target_port,
        &["cluster", "setslot", &slot, "importing", &source],
    )
    .await;
    redis_cli(
        source_port,
        &["cluster", "setslot", &slot, "migrating", &target],
    )
    .await;
    redis_cli(target_port, &["cluster", "setslot", &slot, "node", &target]).await;
    redis_cli(source_port, &["cluster", "setslot", &slot, "node", &target]).await;
    for (_, port) in nodes
        .iter()
        .filter(|(id, _)| *id != source && *id != target)
    {
        redis_cli(*port, &["cluster", "setslot", &slot, "node", &target]).await;
    }
    assert_eq!(owner_of(target_port, slot.parse().unwrap()).await.0, target);

    // Until a's subscriber notices (2 to 4 s), broadcasts are lost.
    within(
        WAIT,
        "a broadcast to reach a's client after the move",
        async {
            let mut n = 0;
            loop {
                b.io.emit("after", json!(n));
                n += 1;
                let waiting = peer.client_event("a1", "after");
                if tokio::time::timeout(Duration::from_millis(200), waiting)
                    .await
                    .is_ok()
                {
                    return;
                }
            }
        },
    )
    .await;
}
