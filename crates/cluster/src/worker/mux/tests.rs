//! A forwarder's link and an owner's side joined by an in-memory pipe,
//! the owner serving a small app: answers whole and in pieces, many
//! requests at once, a request given up (the owner drops it), tunnels,
//! and a link that breaks or carries garbage; and how a request for a link
//! is told from a forwarded request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::{get, post};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use iocluster_engineio::ConnectionLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

use super::client::{Link, LinkError, LinkRequest};
use super::server::serve_frames;
use super::{link_request, preface};

const LONG: Duration = Duration::from_secs(10);

/// Drops its sender when the request that holds it is dropped.
struct Dropped(#[allow(dead_code)] oneshot::Sender<()>);

fn app(dropped: Option<oneshot::Sender<()>>) -> Router {
    let dropped = Arc::new(parking_lot::Mutex::new(dropped));
    Router::new()
        .route(
            "/hello",
            get(|ConnectInfo(client): ConnectInfo<SocketAddr>| async move {
                ([("x-test", "yes")], format!("hi {client}"))
            }),
        )
        .route("/echo", post(|body: Bytes| async move { body }))
        .route(
            "/later",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                "later"
            }),
        )
        .route(
            "/big",
            get(|| async {
                let pieces =
                    (0..16u8).map(|i| Ok::<_, std::io::Error>(Bytes::from(vec![i; 65_536])));
                Body::from_stream(futures_util::stream::iter(pieces))
            }),
        )
        .route(
            "/forever",
            get(move || {
                let guard = dropped.lock().take().map(Dropped);
                async move {
                    let _guard = guard;
                    std::future::pending::<()>().await;
                }
            }),
        )
}

/// An owner serving `app` on the other end of the pipe returned, until
/// the link ends.
fn owner(app: Router) -> (tokio::io::DuplexStream, tokio::task::JoinHandle<()>) {
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    let (their_read, their_write) = tokio::io::split(theirs);
    let serving = tokio::spawn(serve_frames(
        their_read,
        their_write,
        Bytes::new(),
        app,
        ConnectionLimits::default(),
    ));
    (ours, serving)
}

/// A link to an owner serving `app`.
fn link_to(app: Router) -> Arc<Link> {
    let (ours, _) = owner(app);
    let (read, write) = tokio::io::split(ours);
    Link::start(read, write, BytesMut::new())
}

async fn send(
    link: &Arc<Link>,
    method: Method,
    target: &str,
    body: &[u8],
    deadline: Duration,
) -> Result<(StatusCode, HeaderMap, Bytes), LinkError> {
    let request = LinkRequest {
        method: &method,
        target,
        client: "10.1.2.3:4567".parse().ok(),
        headers: &HeaderMap::new(),
        sends: |_| true,
        body,
    };
    let response = link.send(&request, deadline).await?;
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|_| LinkError::Closed)?
        .to_bytes();
    Ok((parts.status, parts.headers, body))
}

#[tokio::test]
async fn a_request_gets_the_owners_answer_with_the_clients_address() {
    let link = link_to(app(None));
    let (status, headers, body) = send(&link, Method::GET, "/hello", b"", LONG).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-test"], "yes");
    assert_eq!(body, "hi 10.1.2.3:4567");
    let (status, _, _) = send(&link, Method::GET, "/nowhere", b"", LONG)
        .await
        .unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn many_requests_at_once_each_get_their_own_answer() {
    let link = link_to(app(None));
    let requests = (0..200).map(|i| {
        let link = Arc::clone(&link);
        async move {
            let body = format!("request {i}");
            let (_, _, answer) = send(&link, Method::POST, "/echo", body.as_bytes(), LONG)
                .await
                .unwrap();
            assert_eq!(answer, body);
        }
    });
    futures_util::future::join_all(requests).await;
}

#[tokio::test]
async fn an_answer_in_pieces_arrives_whole_and_in_order() {
    let link = link_to(app(None));
    let (_, _, body) = send(&link, Method::GET, "/big", b"", LONG).await.unwrap();
    assert_eq!(body.len(), 16 * 65_536);
    for (i, piece) in body.chunks(65_536).enumerate() {
        assert!(piece.iter().all(|b| usize::from(*b) == i), "piece {i}");
    }
}

#[tokio::test]
async fn a_request_the_app_answers_later_is_answered_beside_ones_answered_at_once() {
    let link = link_to(app(None));
    let later = send(&link, Method::GET, "/later", b"", LONG);
    let at_once = send(&link, Method::POST, "/echo", b"now", LONG);
    let (later, at_once) = tokio::join!(later, at_once);
    assert_eq!(at_once.unwrap().2, Bytes::from_static(b"now"));
    assert_eq!(later.unwrap().2, Bytes::from_static(b"later"));
}

#[tokio::test]
async fn a_request_given_up_is_dropped_by_the_owner_too() {
    let (dropped_tx, dropped) = oneshot::channel();
    let link = link_to(app(Some(dropped_tx)));
    let deadline = Duration::from_millis(50);
    let given_up = send(&link, Method::GET, "/forever", b"", deadline);
    let given_up = tokio::time::timeout(LONG, given_up)
        .await
        .expect("given up soon after its deadline");
    assert!(matches!(given_up, Err(LinkError::Timeout)), "{given_up:?}");
    // The reset reaches the owner, which drops the request's future.
    assert!(tokio::time::timeout(LONG, dropped).await.is_ok());
    // And the link still serves.
    let (status, _, _) = send(&link, Method::GET, "/hello", b"", LONG).await.unwrap();
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_tunnel_carries_http_both_ways_beside_requests() {
    let link = link_to(app(None));
    let mut tunnel = link.open_tunnel().expect("the link is open");
    tunnel
        .write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello")
        .await
        .unwrap();
    let (_, _, beside) = send(&link, Method::POST, "/echo", b"beside", LONG)
        .await
        .unwrap();
    assert_eq!(beside, "beside");
    let mut answer = Vec::new();
    while !answer.ends_with(b"hello") {
        let mut chunk = [0u8; 256];
        let n = tokio::time::timeout(LONG, tunnel.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "the tunnel ended early: {answer:?}");
        answer.extend_from_slice(&chunk[..n]);
    }
    assert!(answer.starts_with(b"HTTP/1.1 200 OK\r\n"), "{answer:?}");
}

#[tokio::test]
async fn a_link_whose_owner_goes_fails_what_waits_on_it_at_once() {
    let (ours, theirs) = tokio::io::duplex(1 << 16);
    let (read, write) = tokio::io::split(ours);
    let link = Link::start(read, write, BytesMut::new());
    let waiting = tokio::spawn({
        let link = Arc::clone(&link);
        async move { send(&link, Method::GET, "/hello", b"", LONG).await }
    });
    // The owner reads the request, then goes away.
    let (mut their_read, their_write) = tokio::io::split(theirs);
    let mut request = [0u8; 9];
    their_read.read_exact(&mut request).await.unwrap();
    drop(their_read);
    drop(their_write);
    let answer = tokio::time::timeout(Duration::from_secs(2), waiting)
        .await
        .expect("no wait for the deadline")
        .unwrap();
    assert!(matches!(answer, Err(LinkError::Closed)), "{answer:?}");
    assert!(link.open_tunnel().is_none(), "a closed link opens nothing");
}

#[tokio::test]
async fn garbage_from_the_forwarder_closes_the_link() {
    // An unknown frame kind.
    let (mut ours, serving) = owner(app(None));
    ours.write_all(&[0, 0, 0, 0, 99, 0, 0, 0, 1]).await.unwrap();
    tokio::time::timeout(LONG, serving).await.unwrap().unwrap();
    let mut rest = Vec::new();
    ours.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty(), "nothing answered: {rest:?}");

    // A length over the limit.
    let (mut ours, serving) = owner(app(None));
    ours.write_all(&[0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 1])
        .await
        .unwrap();
    tokio::time::timeout(LONG, serving).await.unwrap().unwrap();
}

#[test]
fn a_link_request_is_told_from_a_forwarded_request() {
    let preface = preface("abc");
    assert_eq!(link_request(preface.as_bytes()), Some(preface.len()));
    let mut with_frames = preface.clone().into_bytes();
    with_frames.extend_from_slice(b"\0\0\0\0\x04\0\0\0\x01");
    assert_eq!(link_request(&with_frames), Some(preface.len()));
    assert_eq!(
        link_request(b"GET /socket.io/?EIO=4&transport=polling&sid=abc HTTP/1.1\r\n\r\n"),
        None
    );
    // Cut short.
    assert_eq!(
        link_request(b"GET /?sid=abc&iocluster-link=2 HTTP/1.1\r\n"),
        None
    );
    // Frames of another version.
    assert_eq!(
        link_request(b"GET /?sid=abc&iocluster-link=1 HTTP/1.1\r\nhost: x\r\n\r\n"),
        None
    );
    assert_eq!(link_request(b"\xff\xfe garbage"), None);
}
