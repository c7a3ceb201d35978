//! What only the root's end-to-end tests need, on top of
//! `iocluster-testkit` (which has the processes, clients and waits): the
//! `iocluster` binary cargo built for them, the built-in app's numbered
//! broadcasts, and the load-balancer scenarios.
#![allow(dead_code)] // each test crate uses its own subset of the helpers

/// The load-balancer tests' shared half (`tests/lb_*.rs`).
pub mod lb;

use std::path::Path;

use iocluster_testkit::WsClient;

/// The `iocluster` binary cargo built for these tests.
pub fn iocluster_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_iocluster"))
}

/// Emits the built-in app's `broadcast(n)` with ack `n` and reads until
/// the ack.
pub async fn broadcast(sender: &mut WsClient, n: u64) {
    sender
        .send(&format!("42{n}[\"broadcast\",{n}]"))
        .await
        .unwrap();
    while sender.next_packet().await.unwrap() != format!("43{n}[]") {}
}

/// The number `n` of a `broadcast(n)` event packet.
pub fn tick(packet: &str) -> Option<u64> {
    let event: serde_json::Value = serde_json::from_str(packet.strip_prefix("42")?).ok()?;
    (event[0] == "broadcast").then(|| event[1].as_u64())?
}
