//! The per-session send buffer: bounded, never blocking, refusing after
//! close.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

mod support;

use std::time::Duration;

use iocluster_engineio::{EngineConfig, Message, SendError};
use support::*;

fn three_messages() -> EngineConfig {
    EngineConfig::default().max_buffered_messages(3)
}

#[tokio::test]
async fn send_beyond_max_buffered_messages_returns_buffer_full() {
    let server = TestServer::start_silent(three_messages()).await;
    let sid = server.open_polling().await;
    let session = server.session(&sid);

    for i in 0..3 {
        session
            .send(Message::text(&format!("m{i}")))
            .expect("room left");
    }

    assert_eq!(
        session.send(Message::text("m3")),
        Err(SendError::BufferFull)
    );
    assert!(
        session.is_open(),
        "a full buffer does not close the session"
    );
    assert_eq!(server.poll_payload(&sid).await, "4m0\x1e4m1\x1e4m2");
}

#[tokio::test]
async fn poll_that_drains_the_buffer_makes_room_again() {
    let server = TestServer::start_silent(three_messages()).await;
    let sid = server.open_polling().await;
    let session = server.session(&sid);
    for i in 0..3 {
        session.send(Message::text(&format!("m{i}"))).expect("send");
    }
    assert_eq!(session.send(Message::text("x")), Err(SendError::BufferFull));

    assert_eq!(server.poll_payload(&sid).await, "4m0\x1e4m1\x1e4m2");

    for i in 3..6 {
        session
            .send(Message::text(&format!("m{i}")))
            .expect("room after the poll");
    }
    assert_eq!(server.poll_payload(&sid).await, "4m3\x1e4m4\x1e4m5");
}

#[tokio::test]
async fn send_many_queues_all_messages_or_none() {
    let server = TestServer::start_silent(three_messages()).await;
    let sid = server.open_polling().await;
    let session = server.session(&sid);
    session.send(Message::text("first")).expect("send");
    session.send(Message::text("second")).expect("send");

    let refused = session.send_many([Message::text("a"), Message::binary(vec![1u8])].into_iter());

    assert_eq!(refused, Err(SendError::BufferFull));
    assert_eq!(server.poll_payload(&sid).await, "4first\x1e4second");
    session
        .send_many([Message::text("a"), Message::binary(vec![1u8])].into_iter())
        .expect("room after the poll");
    assert_eq!(server.poll_payload(&sid).await, "4a\x1ebAQ==");
}

#[tokio::test]
async fn send_after_close_returns_closed() {
    let server = TestServer::start_silent(EngineConfig::default()).await;
    let closed_by_server = server.session(&server.open_polling().await);
    let client_sid = server.open_polling().await;
    let closed_by_client = server.session(&client_sid);

    closed_by_server.close();
    server.send_payload(&client_sid, "1").await;
    server.wait_until_gone(&client_sid).await;

    assert_eq!(
        closed_by_server.send(Message::text("late")),
        Err(SendError::Closed),
        "closing (close packet queued) refuses new messages"
    );
    assert_eq!(
        closed_by_client.send(Message::text("late")),
        Err(SendError::Closed)
    );
    assert!(!closed_by_client.is_open());
}

#[tokio::test]

async fn queued_ping_takes_no_room_from_messages() {
    let config = three_messages()
        .ping_interval(Duration::from_millis(50))
        .ping_timeout(Duration::from_secs(30));
    let server = TestServer::start_silent(config).await;
    let sid = server.open_polling().await;
    let session = server.session(&sid);
    // The client does not poll: the first ping waits in the queue.
    server.wait_until_state(&sid, "Ping { probe: false }").await;

    for i in 0..3 {
        assert_eq!(
            session.send(Message::text(&format!("m{i}"))),
            Ok(()),
            "message {i} of max_buffered_messages = 3"
        );
    }
}

#[tokio::test]
async fn send_beyond_max_buffered_bytes_returns_buffer_full_and_counts_it() {
    let server = TestServer::start_silent(EngineConfig::default().max_buffered_bytes(1_000)).await;
    let sid = server.open_polling().await;
    let session = server.session(&sid);
    let refused_before = iocluster_engineio::EngineStats::now().buffer_full;

    // Alone, a message larger than the bound still goes (or it could never
    // be sent); after it, nothing more fits.
    session
        .send(Message::text(&"a".repeat(1_500)))
        .expect("an empty buffer takes one message");
    assert_eq!(session.send(Message::text("b")), Err(SendError::BufferFull));
    assert_eq!(server.poll_payload(&sid).await.len(), 1 + 1_500);

    // 600 + 400 bytes fit; one more byte does not, all or nothing.
    session.send(Message::text(&"c".repeat(600))).expect("fits");
    session.send(Message::text(&"d".repeat(400))).expect("fits");
    assert_eq!(
        session.send_many([Message::text("e"), Message::binary(vec![1u8])].into_iter()),
        Err(SendError::BufferFull)
    );
    assert!(
        session.is_open(),
        "a full buffer does not close the session"
    );
    let payload = server.poll_payload(&sid).await;
    assert_eq!(
        payload,
        format!("4{}\x1e4{}", "c".repeat(600), "d".repeat(400))
    );
    assert!(iocluster_engineio::EngineStats::now().buffer_full >= refused_before + 2);
}
