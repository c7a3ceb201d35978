//! A client that reads too slowly for its broadcasts: with connection state
//! recovery on, nothing is lost silently. Its session is closed when its
//! send buffer overflows, and the client, reconnecting, recovers every
//! packet after the last one it read.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

mod support;

use iocluster_socketio::engineio::EngineConfig;
use iocluster_socketio::{Payload, RecoveryConfig, ServerConfig};
use iocluster_testkit::{WAIT, WsClient, within};
use support::TestServer;

/// How many broadcasts, and how large: emitted at once (the test's
/// runtime runs nothing else meanwhile), far more than a 4-message send
/// buffer holds.
const BROADCASTS: u64 = 40;
const SIZE: usize = 1_000;

/// The number `n` of a `big(n, padding, offset)` event packet.
fn big(packet: &str) -> Option<u64> {
    let event: serde_json::Value = serde_json::from_str(packet.strip_prefix("42")?).ok()?;
    (event[0] == "big").then(|| event[1].as_u64())?
}

#[tokio::test]
async fn a_slow_client_with_recovery_gets_every_broadcast_exactly_once_in_order() {
    let config = ServerConfig::default()
        .engine(EngineConfig::default().max_buffered_messages(4))
        .recovery(RecoveryConfig::default());
    let server = TestServer::start_with(config).await;
    let mut client = WsClient::open(server.addr).await.unwrap();
    client.connect_namespace("40").await.unwrap();
    let (id, pid) = (client.id.clone(), client.recovery_pid.clone().unwrap());
    // A round trip: the socket's connection handlers have run and what
    // they emit goes straight to the session from now on.
    client.echo(1, "ready").await.unwrap();

    // The client does not read while the broadcasts go out.
    let padding = "p".repeat(SIZE);
    for n in 0..BROADCASTS {
        server
            .io
            .emit("big", Payload::new(vec![n.into(), padding.clone().into()]));
    }

    // It reads what it was sent until the server closed its session.
    let mut received = Vec::new();
    while let Ok(packet) = within(WAIT, "the backlog", client.next_packet()).await {
        received.extend(big(&packet));
    }
    assert!(
        !received.is_empty() && (received.len() as u64) < BROADCASTS,
        "the session was closed before every broadcast fit: {} received",
        received.len()
    );
    let mut offset = client.offset.clone().unwrap();

    // Reconnecting, it recovers the rest: the same socket, every broadcast
    // after the last it read. (What it missed does not fit in a 4-message
    // buffer either: each reconnection brings what fits, and the next
    // resumes from there.)
    let mut reconnections = 0;
    while (received.len() as u64) < BROADCASTS {
        reconnections += 1;
        assert!(reconnections <= BROADCASTS, "no progress: {received:?}");
        let mut back = WsClient::open(server.addr).await.unwrap();
        let auth = serde_json::json!({ "pid": pid, "offset": offset });
        back.connect_namespace(&format!("40{auth}")).await.unwrap();
        assert_eq!(back.id, id, "recovered");
        while let Ok(packet) = within(WAIT, "the recovered broadcasts", back.next_packet()).await {
            received.extend(big(&packet));
            if received.len() as u64 == BROADCASTS {
                break;
            }
        }
        offset = back.offset.clone().unwrap();
    }
    assert_eq!(received, (0..BROADCASTS).collect::<Vec<_>>());
}
