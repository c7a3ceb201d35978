//! `redis-sentinel://host:port?sentinelServiceName=NAME` works from the URL
//! alone: our servers ask a real `redis-server --sentinel` for the master
//! and reach each other through it.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

mod support;

use std::process::Stdio;
use std::time::Duration;

use iocluster_redis::RedisAdapterConfig;
use serde_json::json;
use support::{RedisServer, RustServer, free_port, within};
use tokio::io::{AsyncBufReadExt, BufReader};
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
    let mut sentinel = Command::new("redis-server")
        .arg(&config)
        .arg("--sentinel")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server must be installed");
    let stdout = sentinel.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    within("the sentinel to monitor the master", async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("+monitor master mymaster") {
                return;
            }
        }
        panic!("the sentinel exited before it monitored the master");
    })
    .await;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

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
    let _ = sentinel.start_kill();
    let _ = std::fs::remove_dir_all(&dir);
}
