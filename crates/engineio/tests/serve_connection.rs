//! `serve_connection` with bytes already read: the request must be served the
//! same whatever the split between the handed-over prefix and the socket.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

mod support;

use iocluster_engineio::{EngineConfig, Message};
use support::*;
use tokio::net::TcpListener;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;

/// A listener whose connections the test accepts and hands over itself.
async fn handover_listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.expect("bind")
}

fn sid_of(response: &Response) -> String {
    open_packet(response.text())["sid"]
        .as_str()
        .expect("sid")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_handshake_is_served_for_every_prefix_split() {
    let server = TestServer::start(EngineConfig::default()).await;
    let request = http_request("GET", &server.target("EIO=4&transport=polling"), &[], b"");
    let reference = server.get("EIO=4&transport=polling").await;
    let reference = reference.normalized(&sid_of(&reference));
    let listener = handover_listener().await;
    let addr = listener.local_addr().expect("address");

    for k in 0..=request.len() {
        let mut client = HttpConnection::open(addr).await.expect("connect");
        client.write(&request).await;
        hand_over(&listener, server.engine.router(), k).await;

        let response = client.read_response().await;

        let sid = sid_of(&response);
        assert_default_sid(&sid);
        assert_eq!(response.normalized(&sid), reference, "split at {k}");
        assert!(server.engine.session(&sid).is_some(), "split at {k}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_post_is_served_for_every_prefix_split() {
    let server = TestServer::start_silent(EngineConfig::default()).await;
    let sid = server.open_polling().await;
    let body = b"4hello\x1ebAQIDBA==";
    let request = http_request("POST", &server.target(&polling(&sid)), &[], body);
    let body_start = request.len() - body.len();
    let reference = server.post(&polling(&sid), body).await.normalized(&sid);
    let listener = handover_listener().await;
    let addr = listener.local_addr().expect("address");

    // Splits fall in the request line, the headers and the body.
    assert!(body_start > 20);
    for k in 0..=request.len() {
        let mut client = HttpConnection::open(addr).await.expect("connect");
        client.write(&request).await;
        hand_over(&listener, server.engine.router(), k).await;

        let response = client.read_response().await;

        assert_eq!(response.normalized(&sid), reference, "split at {k}");
        let messages = server.events.messages(&sid, 2 * (k + 2)).await;
        assert_eq!(
            messages[messages.len() - 2..],
            [Message::text("hello"), Message::binary(vec![1u8, 2, 3, 4])],
            "split at {k}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrade_with_early_frames_is_served_for_every_prefix_split() {
    let server = TestServer::start(EngineConfig::default()).await;
    let mut bytes = http_request(
        "GET",
        &server.target("EIO=4&transport=websocket"),
        WS_UPGRADE_HEADERS,
        b"",
    );
    // Frames sent right behind the request, before any answer.
    bytes.extend(client_frame(1, b"4hello"));
    bytes.extend(client_frame(2, &[1, 2, 3]));
    let listener = handover_listener().await;
    let addr = listener.local_addr().expect("address");

    for k in 0..=bytes.len() {
        let mut client = HttpConnection::open(addr).await.expect("connect");
        client.write(&bytes).await;
        hand_over(&listener, server.engine.router(), k).await;

        let response = client.read_response().await;
        assert_eq!(response.status, 101, "split at {k}");
        assert_eq!(
            response.header("sec-websocket-accept"),
            Some(WS_ACCEPT),
            "split at {k}"
        );
        let (stream, leftover) = client.into_parts();
        let mut ws = WsConnection::new(
            WebSocketStream::from_partially_read(stream, leftover, Role::Client, None).await,
        );

        let open = open_packet(&ws.recv_text().await);
        assert_default_sid(open["sid"].as_str().expect("sid"));
        assert_eq!(ws.recv_text().await, "4hello", "split at {k}");
        assert_eq!(&ws.recv_binary().await[..], &[1, 2, 3], "split at {k}");
        ws.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_alive_connection_serves_more_requests_after_a_prefixed_one() {
    let server = TestServer::start(EngineConfig::default()).await;
    let handshake = http_request("GET", &server.target("EIO=4&transport=polling"), &[], b"");
    let listener = handover_listener().await;
    let addr = listener.local_addr().expect("address");

    for k in 0..=handshake.len() {
        let mut client = HttpConnection::open(addr).await.expect("connect");
        client.write(&handshake).await;
        hand_over(&listener, server.engine.router(), k).await;
        let opened = client.read_response().await;
        assert_eq!(opened.status, 200, "split at {k}");
        let sid = sid_of(&opened);

        let target = server.target(&polling(&sid));
        client
            .write(&http_request("POST", &target, &[], b"4again"))
            .await;
        let posted = client.read_response().await;
        client.write(&http_request("GET", &target, &[], b"")).await;
        let polled = client.read_response().await;

        assert_eq!(posted.text(), "ok", "split at {k}");
        assert_eq!(polled.text(), "4again", "split at {k}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_served_for_every_prefix_split() {
    let server = TestServer::start(EngineConfig::default()).await;
    let handshake = http_request("GET", &server.target("EIO=4&transport=polling"), &[], b"");
    let pipelined = [handshake.clone(), handshake].concat();
    let listener = handover_listener().await;
    let addr = listener.local_addr().expect("address");

    for k in 0..=pipelined.len() {
        let mut client = HttpConnection::open(addr).await.expect("connect");
        client.write(&pipelined).await;
        hand_over(&listener, server.engine.router(), k).await;

        let first = client.read_response().await;
        let second = client.read_response().await;

        assert_eq!(first.status, 200, "split at {k}");
        assert_eq!(second.status, 200, "split at {k}");
        assert_ne!(sid_of(&first), sid_of(&second), "split at {k}");
    }
}
