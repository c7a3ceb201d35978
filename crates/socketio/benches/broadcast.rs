//! A broadcast to 10,000 in-process sockets: one encode, 10,000 queue
//! pushes. Sessions are opened through the real router (polling handshake
//! and CONNECT) without a network; queues are drained between batches,
//! outside the measured time.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use iocluster_socketio::{Server, ServerConfig};
use serde_json::json;
use tower::ServiceExt;

const SOCKETS: usize = 10_000;
/// Broadcasts between two drains (below the per-session buffer bound).
const BATCH: u64 = 1_000;

async fn call(router: &axum::Router, method: &str, uri: &str, body: &'static str) -> String {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::from(body))
        .expect("valid request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

async fn open_sessions(router: &axum::Router) -> Vec<String> {
    let mut sids = Vec::with_capacity(SOCKETS);
    for _ in 0..SOCKETS {
        let open = call(router, "GET", "/socket.io/?EIO=4&transport=polling", "").await;
        let value: serde_json::Value = serde_json::from_str(&open[1..]).expect("open packet");
        let sid = value["sid"].as_str().expect("sid").to_owned();
        let uri = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
        call(router, "POST", &uri, "40").await;
        sids.push(uri);
    }
    // Wait until every socket is connected, then take the CONNECT packets.
    drain(router, &sids).await;
    sids
}

async fn drain(router: &axum::Router, sids: &[String]) {
    for uri in sids {
        call(router, "GET", uri, "").await;
    }
}

fn broadcast(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let io = runtime.block_on(async { Server::new(ServerConfig::default()) });
    let router = io.router();
    let sids = runtime.block_on(async {
        let sids = open_sessions(&router).await;
        // CONNECTs are handled on spawned tasks: wait for all of them.
        while io.of("/").sockets().len() < SOCKETS {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drain(&router, &sids).await;
        sids
    });
    let payload = json!({ "text": "hello everyone", "n": 42 });
    let mut group = c.benchmark_group("broadcast");
    group.sample_size(20);
    group.bench_function("emit_to_10000_sockets", |b| {
        b.iter_custom(|iterations| {
            let mut measured = Duration::ZERO;
            let mut done = 0;
            while done < iterations {
                let batch = BATCH.min(iterations - done);
                let started = Instant::now();
                for _ in 0..batch {
                    io.emit("news", payload.clone());
                }
                measured += started.elapsed();
                done += batch;
                runtime.block_on(drain(&router, &sids));
            }
            measured
        })
    });
    group.finish();
}

criterion_group!(benches, broadcast);
criterion_main!(benches);
