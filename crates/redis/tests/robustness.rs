//! A server that never answers, and garbage on the channels: requests give
//! up after their timeout with what they have, and nothing breaks.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

mod support;

use std::time::Duration;

use bytes::Bytes;
use iocluster_redis::fred::interfaces::PubsubInterface;
use iocluster_redis::{Emitter, RedisAdapterConfig, connect_client, connect_subscriber};
use iocluster_socketio::adapter::AdapterError;
use iocluster_testkit::{NodePeer, RedisServer, WAIT, within};
use serde_json::json;
use support::RustServer;

/// A key of these tests only: the Node peer's server (key `socket.io`)
/// stays out of them.
const KEY: &str = "robust";

fn config() -> RedisAdapterConfig {
    RedisAdapterConfig::default()
        .key(KEY)
        .requests_timeout(Duration::from_millis(300))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_time_out_when_a_counted_server_never_answers() {
    let redis = RedisServer::start().await;
    let rust = RustServer::start_with(&redis.url(), config()).await;
    let mut peer = NodePeer::start(redis.port).await;
    peer.connect("r1", &rust.url()).await;
    // A "server" that listens on the request channel and never answers.
    let silent = connect_subscriber(&redis.url()).await.expect("connect");
    silent
        .subscribe(format!("{KEY}-request#/#"))
        .await
        .expect("subscribe");
    let ns = rust.io.of("/");
    // fred may report the SUBSCRIBE done a moment before Redis has run it
    // (on a busy machine): wait until Redis counts the silent server.
    within(WAIT, "the silent server to be counted", async {
        while ns.server_count().await != 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;

    let error = ns.broadcast().fetch_sockets().await.unwrap_err();
    assert_eq!(
        error,
        AdapterError::Timeout {
            received: 0,
            expected: 1
        }
    );

    let error = ns
        .server_side_emit_with_ack("hello", (), Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(
        error,
        AdapterError::Timeout {
            received: 0,
            expected: 1
        }
    );

    // Our client answers; the silent server never counts its clients.
    let replies = ns
        .broadcast()
        .timeout(Duration::from_millis(300))
        .emit_with_ack("ask", ())
        .await;
    assert!(!replies.complete);
    assert_eq!(
        replies.replies,
        [iocluster_socketio::Payload::from("r1-ack")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_every_channel_is_ignored() {
    let redis = RedisServer::start().await;
    let rust = RustServer::start_with(&redis.url(), config()).await;
    let mut peer = NodePeer::start(redis.port).await;
    peer.connect("r1", &rust.url()).await;
    let client = connect_client(&redis.url()).await.expect("connect");
    let garbage: [&[u8]; 8] = [
        b"",
        b"{not json",
        &[0xc1],
        &[0x93, 0xa1, b'x'],
        &[0x93, 0xa1, b'x', 0x01, 0x02],
        &[0xdd, 0xff, 0xff, 0xff, 0xff],
        br#"{"type":6,"data":"not an array"}"#,
        br#"{"type":7,"requestId":"r","packet":{"type":2}}"#,
    ];
    for channel in [
        format!("{KEY}#/#"),
        format!("{KEY}#/#room#"),
        format!("{KEY}-request#/#"),
        format!("{KEY}-response#/#"),
    ] {
        for message in garbage {
            let _: i64 = client
                .publish(channel.clone(), Bytes::from_static(message))
                .await
                .expect("publish");
        }
    }
    Emitter::new(client)
        .with_key(KEY)
        .emit("still-alive", json!(1))
        .await
        .expect("emit");
    assert_eq!(peer.client_event("r1", "still-alive").await, json!([1]));
}
