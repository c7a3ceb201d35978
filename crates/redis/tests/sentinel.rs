//! `redis-sentinel://host:port?sentinelServiceName=NAME` works from the URL
//! alone: our servers ask a real `redis-server --sentinel` for the master
//! and reach each other through it.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

mod support;

use std::time::Duration;

use iocluster_redis::RedisAdapterConfig;
use iocluster_testkit::{RedisServer, TestProcess, WAIT, free_port};
use serde_json::json;
use support::RustServer;
use tokio::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_urls_find_the_master() {
    let master = RedisServer::start().await;
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("iocluster-redis-sentinel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory for the sentinel's config");
    // Sentinel rewrites its config file: it must be its own, writable.
    let config = dir.join("sentinel.conf");
    std::fs::write(
        &config,
        format!(
            "port {port}\nbind 127.0.0.1\ndir {}\nsentinel monitor mymaster 127.0.0.1 {} 1\n",
            dir.display(),
            master.port
        ),
    )
    .expect("write the sentinel's config");
    let mut command = Command::new("redis-server");
    command.arg(&config).arg("--sentinel");
    let mut sentinel = TestProcess::spawn("redis-server --sentinel", command);
    sentinel
        .wait_for_line(WAIT, "the sentinel to monitor the master", |line| {
            line.contains("+monitor master mymaster")
        })
        .await;

    let url = format!("redis-sentinel://127.0.0.1:{port}?sentinelServiceName=mymaster");
    let a = RustServer::start_with(&url, RedisAdapterConfig::default()).await;
    let b = RustServer::start_with(&url, RedisAdapterConfig::default()).await;
    assert_eq!(a.io.of("/").server_count().await, 2);
    let replies =
        a.io.of("/")
            .server_side_emit_with_ack("ping-server", json!("via sentinel"), Duration::from_secs(3))
            .await
            .expect("b replies");
    assert_eq!(replies.len(), 1);
    b.server_event("ping-server").await;
    sentinel.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
}
