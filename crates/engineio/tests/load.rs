//! Many sessions: nothing leaks once they close, and many at once are all
//! served correctly.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

mod support;

use std::collections::HashSet;
use std::time::Duration;

use futures_util::future::join_all;
use iocluster_engineio::{CloseReason, EngineConfig};
use support::*;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message as Frame;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_closed_sessions_leave_no_session_and_no_task_behind() {
    let server = TestServer::start(EngineConfig::default()).await;
    let metrics = tokio::runtime::Handle::current().metrics();
    // The accept loop of the server, and this test.
    let baseline = metrics.num_alive_tasks();

    for round in 0..20 {
        // 25 polling sessions closed by a `1` packet, 25 WebSocket sessions
        // closed by the client, side by side.
        let polling = (0..25).map(|_| async {
            let sid = server.open_polling().await;
            server.send_payload(&sid, "1").await;
        });
        let websocket = (0..25).map(|_| async {
            let (ws, _, _) = server.open_websocket().await;
            ws.close().await;
        });
        within(
            WAIT,
            &format!("round {round} of 50 sessions"),
            futures_util::future::join(join_all(polling), join_all(websocket)),
        )
        .await;
    }

    let opened = server
        .events
        .events()
        .iter()
        .filter(|e| matches!(e, Event::Open(_)))
        .count();
    assert_eq!(opened, 1000);
    let engine = server.engine.clone();
    eventually(WAIT, "every session and task of them to end", || {
        engine.session_count() == 0 && metrics.num_alive_tasks() == baseline
    })
    .await;
    let closes = server
        .events
        .events()
        .iter()
        .filter(|e| matches!(e, Event::Close(_, CloseReason::TransportClose)))
        .count();
    assert_eq!(closes, 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_websocket_sessions_each_echo_twenty_messages() {
    let server = TestServer::start(EngineConfig::default()).await;
    let target = server.target("EIO=4&transport=websocket");
    let mut clients = JoinSet::new();

    for client in 0..200 {
        let (addr, target) = (server.addr, target.clone());
        clients.spawn(async move {
            let (mut ws, _) = WsConnection::connect(addr, &target)
                .await
                .expect("handshake");
            let open = open_packet(&ws.recv_text().await);
            let sid = open["sid"].as_str().expect("sid").to_owned();
            let sent: Vec<Frame> = (0..20)
                .map(|i| match i % 4 {
                    3 => Frame::binary(vec![client as u8, i as u8]),
                    _ => Frame::text(format!("4client {client} message {i}")),
                })
                .collect();
            for frame in &sent {
                match frame {
                    Frame::Text(text) => ws.send_text(text.as_str()).await,
                    Frame::Binary(data) => ws.send_binary(data).await,
                    _ => unreachable!(),
                }
            }
            let mut received = Vec::with_capacity(sent.len());
            for _ in 0..sent.len() {
                received.push(ws.recv().await.expect("an echo"));
            }
            assert_eq!(received, sent, "client {client}");
            ws.close().await;
            sid
        });
    }

    let mut sids = HashSet::new();
    let all = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(joined) = clients.join_next().await {
            let sid = joined.expect("a client failed");
            assert!(sids.insert(sid), "sid reused");
        }
    })
    .await;
    assert!(all.is_ok(), "200 clients did not finish within 30 s");
    assert_eq!(sids.len(), 200);
    for sid in &sids {
        assert_eq!(server.events.messages(sid, 20).await.len(), 20);
    }
    let engine = server.engine.clone();
    eventually(WAIT, "every session to end", || engine.session_count() == 0).await;
}
