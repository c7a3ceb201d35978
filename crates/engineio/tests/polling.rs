//! HTTP long-polling: POSTs carry payloads to the server, GETs take what the
//! server queued, one of each at a time.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

mod support;

use std::time::Duration;

use iocluster_engineio::{CloseReason, EngineConfig, Message};
use support::*;

/// How long a request must stay unanswered to count as pending.
const PENDING_WINDOW: Duration = Duration::from_millis(200);

#[tokio::test]
async fn post_answers_ok() {
    let server = TestServer::start_silent(EngineConfig::default()).await;
    let sid = server.open_polling().await;

    let response = server.post(&polling(&sid), "4hello").await;

    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "ok");
    assert!(
        response
            .header("content-type")
            .is_some_and(|v| v.starts_with("text/html")),
        "content-type {:?}",
        response.header("content-type")
    );
}

#[tokio::test]
async fn payload_packets_reach_the_handler_in_order() {
    let server = TestServer::start_silent(EngineConfig::default()).await;
    let sid = server.open_polling().await;

    server
        .send_payload(&sid, "4hello\x1ebAQIDBA==\x1e4\x1e4wörld")
        .await;

    assert_eq!(
        server.events.messages(&sid, 4).await,
        vec![
            Message::text("hello"),
            Message::binary(vec![1u8, 2, 3, 4]),
            Message::text(""),
            Message::text("wörld"),
        ]
    );
}

#[tokio::test]
async fn queued_server_messages_come_back_in_one_payload() {
    let server = TestServer::start_silent(EngineConfig::default()).await;
    let sid = server.open_polling().await;
    let session = server.session(&sid);

    session.send(Message::text("a")).expect("send a");
    session
        .send(Message::binary(vec![1u8, 2]))
        .expect("send binary");
    session.send(Message::text("b")).expect("send b");

    let response = server.poll(&sid).await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=UTF-8")
    );
    assert_eq!(response.text(), "4a\x1ebAQI=\x1e4b");
}

#[tokio::test]
async fn get_waits_until_a_message_is_queued() {
    let server = TestServer::start_silent(EngineConfig::default()).await;
    let sid = server.open_polling().await;

    let mut pending = server.begin_poll(&sid).await;
    assert!(
        pending.receives_nothing_within(PENDING_WINDOW).await,
        "a GET with nothing queued must wait"
    );
    server
        .session(&sid)
        .send(Message::text("late"))
        .expect("send");

    let response = pending.read_response().await;
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "4late");
}

#[tokio::test]
async fn second_concurrent_get_closes_the_session() {
    let server = TestServer::start_silent(EngineConfig::default()).await;
    let sid = server.open_polling().await;
    let mut first = server.begin_poll(&sid).await;

    server
        .poll(&sid)
        .await
        .assert_engine_error(400, 3, "Bad request");

    let first = first.read_response().await;
    assert_eq!(first.status, 200);
    assert_eq!(first.text(), "1");
    assert_eq!(
        server.events.close_reason(&sid).await,
        CloseReason::TransportError
    );
    server
        .poll(&sid)
        .await
        .assert_engine_error(400, 1, "Session ID unknown");
}

#[tokio::test]
async fn second_concurrent_post_closes_the_session() {
    let server = TestServer::start_silent(EngineConfig::default()).await;
    let sid = server.open_polling().await;
    let mut first = server.connect().await;
    let request = http_request("POST", &server.target(&polling(&sid)), &[], b"4hello");
    // Everything but the last three body bytes: the server holds the POST.
    first.write(&request[..request.len() - 3]).await;
    server.wait_until_state(&sid, "post_pending: true").await;

    server
        .post(&polling(&sid), "4second")
        .await
        .assert_engine_error(400, 3, "Bad request");
    assert_eq!(
        server.events.close_reason(&sid).await,
        CloseReason::TransportError
    );

    first.write(&request[request.len() - 3..]).await;
    let first = first.read_response().await;
    assert_eq!(first.status, 200, "the first POST still gets its answer");
    let messages = server
        .events
        .events()
        .into_iter()
        .filter(|e| matches!(e, Event::Message(..)))
        .count();
    assert_eq!(messages, 0, "a closed session delivers no message");
    server
        .post(&polling(&sid), "4third")
        .await
        .assert_engine_error(400, 1, "Session ID unknown");
}

#[tokio::test]
async fn malformed_payload_gets_400_and_closes_only_its_session_with_parse_error() {
    let server = TestServer::start(EngineConfig::default()).await;
    let bystander = server.open_polling().await;
    let payloads: [&[u8]; 7] = [b"abc", b"", b"b!!!", b"4a\x1e", b"4\xff\xfe", b"7", b"0{}"];

    for payload in payloads {
        let sid = server.open_polling().await;
        let mut pending = server.begin_poll(&sid).await;

        server
            .post(&polling(&sid), payload)
            .await
            .assert_engine_error(400, 3, "Bad request");

        assert_eq!(
            server.events.close_reason(&sid).await,
            CloseReason::ParseError,
            "payload {payload:?}"
        );
        assert_eq!(pending.read_response().await.text(), "1");
        server
            .poll(&sid)
            .await
            .assert_engine_error(400, 1, "Session ID unknown");
    }

    server.send_payload(&bystander, "4still here").await;
    assert_eq!(server.poll_payload(&bystander).await, "4still here");
    assert!(server.events.close_reasons(&bystander).is_empty());
}

#[tokio::test]
async fn post_of_exactly_max_payload_is_accepted() {
    let server = TestServer::start_silent(EngineConfig::default().max_payload(1000)).await;
    let sid = server.open_polling().await;
    let mut body = String::from("4");
    body.push_str(&"x".repeat(999));

    server.send_payload(&sid, &body).await;

    assert_eq!(
        server.events.messages(&sid, 1).await,
        vec![Message::text(&body[1..])]
    );
}

#[tokio::test]
async fn post_over_max_payload_gets_413_after_reading_at_most_max_payload() {
    let server = TestServer::start(EngineConfig::default().max_payload(1000)).await;
    let bystander = server.open_polling().await;
    let sid = server.open_polling().await;
    let mut conn = server.connect().await;
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10000000\r\n\r\n",
        server.target(&polling(&sid))
    );
    conn.write(head.as_bytes()).await;
    // 8 KB of the announced 10 MB; the rest never comes.
    let mut part = vec![b'4'];
    part.resize(8 * 1024, b'x');
    conn.write(&part).await;

    let response = conn.read_response().await;

    assert_eq!(response.status, 413);
    assert_eq!(
        server.events.close_reason(&sid).await,
        CloseReason::TransportError
    );
    server.wait_until_gone(&sid).await;
    // The server is still up, and other sessions go on.
    server.open_polling().await;
    server.send_payload(&bystander, "4fine").await;
    assert_eq!(server.poll_payload(&bystander).await, "4fine");
}

#[tokio::test]

async fn post_declaring_a_length_over_max_payload_gets_413_before_the_body_arrives() {
    let server = TestServer::start(EngineConfig::default()).await;
    let sid = server.open_polling().await;
    let mut conn = server.connect().await;
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10000000\r\n\r\n4abc",
        server.target(&polling(&sid))
    );
    conn.write(head.as_bytes()).await;

    // Node answers from the Content-Length alone; nothing more is sent.
    let response = conn.read_response().await;

    assert_eq!(response.status, 413);
    server.wait_until_gone(&sid).await;
}
