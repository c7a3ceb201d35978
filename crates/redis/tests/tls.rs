//! `rediss://user:password@host:port` works from the URL alone: TLS
//! (rustls, the system's roots, here a test CA named by `SSL_CERT_FILE`)
//! and ACL credentials. Two of our servers on a TLS-only `redis-server`
//! with a certificate made by `openssl` at test time count each other and
//! exchange a server-side emit with ack.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

mod support;

use std::path::Path;
use std::time::Duration;

use iocluster_redis::{RedisAdapterConfig, ShardedRedisAdapterConfig};
use iocluster_testkit::{TestProcess, WAIT, free_port, make_test_certificates};
use serde_json::json;
use support::RustServer;
use tokio::process::Command;

#[test]
fn rediss_urls_with_credentials_connect_both_adapters() {
    let dir = std::env::temp_dir().join(format!("iocluster-redis-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory for the certificates");
    make_test_certificates(&dir);
    // SAFETY: the only test of this binary, and no other thread of it
    // exists yet (the runtime is built below): nothing reads the
    // environment concurrently.
    unsafe { std::env::set_var("SSL_CERT_FILE", dir.join("ca.crt")) };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(run(&dir));
    drop(runtime);
    let _ = std::fs::remove_dir_all(&dir);
}

async fn run(dir: &Path) {
    let port = free_port();
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let mut command = Command::new("redis-server");
    command
        .args(["--port", "0", "--bind", "127.0.0.1"])
        .args(["--tls-port", &port.to_string()])
        .args(["--tls-cert-file", &path("server.crt")])
        .args(["--tls-key-file", &path("server.key")])
        .args(["--tls-ca-cert-file", &path("ca.crt")])
        .args(["--tls-auth-clients", "no"])
        .args(["--save", "", "--appendonly", "no"])
        // The default user needs another password: connecting at all
        // proves the URL's user and password were used.
        .args(["--requirepass", "not-the-one"])
        .args(["--user", "alice", "on", ">wonderland", "~*", "&*", "+@all"]);
    let mut redis = TestProcess::spawn("redis-server (TLS)", command);
    redis
        .wait_for_line(
            WAIT,
            "redis-server (TLS) to accept connections (built without TLS?)",
            |line| line.contains("Ready to accept connections"),
        )
        .await;

    let url = format!("rediss://alice:wonderland@127.0.0.1:{port}");
    let a = RustServer::start_with(&url, RedisAdapterConfig::default()).await;
    let b = RustServer::start_with(&url, RedisAdapterConfig::default()).await;
    assert_eq!(a.io.of("/").server_count().await, 2);
    let replies =
        a.io.of("/")
            .server_side_emit_with_ack("ping-server", json!("over tls"), Duration::from_secs(3))
            .await
            .expect("b replies");
    assert_eq!(replies.len(), 1);
    assert_eq!(
        b.server_event("ping-server").await.payload.args,
        [json!("over tls")]
    );

    // The sharded adapter, on the same URL.
    let config = ShardedRedisAdapterConfig::default().channel_prefix("tls");
    let c = RustServer::start_sharded(&url, config.clone()).await;
    let d = RustServer::start_sharded(&url, config).await;
    assert_eq!(c.io.of("/").server_count().await, 2);
    let replies =
        c.io.of("/")
            .server_side_emit_with_ack("ping-server", json!("sharded"), Duration::from_secs(3))
            .await
            .expect("d replies");
    assert_eq!(replies.len(), 1);
    d.server_event("ping-server").await;

    // A wrong password is refused.
    let wrong = format!("rediss://alice:nope@127.0.0.1:{port}");
    assert!(iocluster_redis::connect_client(&wrong).await.is_err());
    redis.kill().await;
}
