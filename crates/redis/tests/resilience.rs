//! Redis going away and coming back: local delivery goes on, nothing
//! panics, and the adapter resubscribes on its own.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

mod support;

use std::time::Duration;

use fred::interfaces::PubsubInterface;
use iocluster_redis::{Emitter, RedisAdapterConfig, connect_client, fred};
use iocluster_testkit::{NodePeer, RedisServer, WAIT, within};
use support::RustServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_keeps_local_delivery_and_resubscribes() {
    let mut redis = RedisServer::start().await;
    let port = redis.port;
    // A key of its own, so that only our adapter listens on its channels
    // (the Node peer's server reconnects through ioredis on its own).
    let config = RedisAdapterConfig::default().key("resilience");
    let rust = RustServer::start_with(&redis.url(), config).await;
    let mut peer = NodePeer::start(redis.port).await;
    peer.connect("r1", &rust.url()).await;
    peer.join("r1", "chat").await;

    redis.kill().await;
    // Local delivery does not wait for Redis.
    rust.io.emit("while-down", ());
    rust.io.to("chat").emit("while-down-in-room", ());
    peer.client_event("r1", "while-down").await;
    peer.client_event("r1", "while-down-in-room").await;
    // Requests give up (after the 5 s command timeout) instead of hanging.
    let count = within(
        WAIT,
        "server_count without Redis",
        rust.io.of("/").server_count(),
    )
    .await;
    assert!(count >= 1);

    let _redis = RedisServer::start_on(port).await;
    let client = connect_client(&format!("redis://127.0.0.1:{port}"))
        .await
        .expect("connect to the restarted redis");
    // Redis announces nothing when a client resubscribes: ask it until our
    // subscriber is back on the request channel (a few hundred ms).
    within(WAIT, "the adapter to resubscribe", async {
        loop {
            let reply: Vec<fred::types::Value> = client
                .pubsub_numsub("resilience-request#/#")
                .await
                .expect("PUBSUB NUMSUB");
            if reply.get(1).and_then(|v| v.as_u64()).unwrap_or(0) >= 1 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    Emitter::new(client)
        .with_key("resilience")
        .to("chat")
        .emit("after-restart", ())
        .await
        .expect("emit");
    peer.client_event("r1", "after-restart").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_adapter_resubscribes_its_shard_channels_after_a_redis_restart() {
    let mut redis = RedisServer::start().await;
    let port = redis.port;
    let config = iocluster_redis::ShardedRedisAdapterConfig::default().channel_prefix("resilience");
    let a = RustServer::start_sharded(&redis.url(), config.clone()).await;
    let b = RustServer::start_sharded(&redis.url(), config).await;
    let mut peer = NodePeer::start(redis.port).await;
    peer.connect("a1", &a.url()).await;
    peer.join("a1", "chat").await;

    redis.kill().await;
    let _redis = RedisServer::start_on(port).await;
    let client = connect_client(&format!("redis://127.0.0.1:{port}"))
        .await
        .expect("connect to the restarted redis");
    // Both servers on the namespace channel, a on chat's: every shard
    // channel is back.
    for (channel, subscribers) in [("resilience#/#", 2), ("resilience#/#chat#", 1)] {
        within(WAIT, &format!("the resubscription to {channel}"), async {
            loop {
                let reply: Vec<fred::types::Value> = client
                    .pubsub_shardnumsub(channel)
                    .await
                    .expect("PUBSUB SHARDNUMSUB");
                if reply.get(1).and_then(|v| v.as_u64()) == Some(subscribers) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
    }
    b.io.to("chat").emit("after-restart", ());
    peer.client_event("a1", "after-restart").await;
    b.io.emit("to-all-after-restart", ());
    peer.client_event("a1", "to-all-after-restart").await;
}
