//! The public port when it speaks TLS: the master reads nothing encrypted.
//! It peeks at the first byte: a TLS handshake goes, unread, to the worker
//! a hash of the client's address picks (which terminates TLS; see
//! `crate::tls`); anything else is a plain-HTTP client on the wrong port,
//! answered with a clear 400 or, with `redirect_http`, a redirect to
//! `https://`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use tokio::net::TcpStream;

use super::Master;
use super::router::{Route, json, pick, plain, respond};
use super::stats::bump;
use crate::config::Balance;
use crate::handoff::HandoffKind;
use crate::tls::HANDSHAKE_RECORD;

/// Routes one connection of the TLS port.
pub(super) async fn handle(master: Arc<Master>, stream: TcpStream, remote: SocketAddr) {
    let mut first = [0u8; 1];
    match tokio::time::timeout(master.config.head_timeout, stream.peek(&mut first)).await {
        Ok(Ok(1)) if first[0] == HANDSHAKE_RECORD => hand_over(&master, stream, remote).await,
        Ok(Ok(1)) => plain_http(&master, stream, remote).await,
        Ok(_) => {}
        Err(_) => {
            bump(&master.stats.head_timeouts);
            tracing::info!(%remote, "no TLS handshake within the head timeout: dropped");
        }
    }
}

/// A TLS client: to the worker its address hashes to (so a client's
/// sessions stay on one worker), for a few tries if workers die.
async fn hand_over(master: &Master, stream: TcpStream, remote: SocketAddr) {
    for _ in 0..3 {
        let route = pick(master, &mut master.table(), Balance::IpHash, remote, None);
        match route {
            Route::Worker(handoff) => {
                if handoff.send(&stream, HandoffKind::Tls, &[]).await.is_ok() {
                    bump(&master.stats.handoffs);
                    return;
                }
            }
            Route::UnknownSid | Route::NoWorker => break,
        }
    }
    bump(&master.stats.no_worker);
    // Nothing can be said in clear to a TLS client: the connection closes.
}

/// A plain-HTTP request on the TLS port.
async fn plain_http(master: &Master, mut stream: TcpStream, remote: SocketAddr) {
    let head = match master.read_head(&mut stream).await {
        Ok(head) => head,
        Err(_) => {
            bump(&master.stats.bad_heads);
            return respond(stream, plain(StatusCode::BAD_REQUEST), false).await;
        }
    };
    bump(&master.stats.bad_heads);
    tracing::info!(%remote, path = %head.path, "plain HTTP on the TLS port");
    let redirect = master
        .config
        .tls
        .as_ref()
        .is_some_and(|tls| tls.redirect_http);
    let location = head
        .host
        .as_deref()
        .and_then(|host| HeaderValue::from_str(&format!("https://{host}{}", head.target)).ok());
    match (redirect, location) {
        (true, Some(location)) => {
            let mut response = plain(StatusCode::MOVED_PERMANENTLY);
            response.headers_mut().insert(header::LOCATION, location);
            respond(stream, response, head.method == "HEAD").await
        }
        _ => {
            let response = json(
                StatusCode::BAD_REQUEST,
                "{\"code\":400,\"message\":\"This port speaks HTTPS: use https://\"}",
            );
            respond(stream, response, head.method == "HEAD").await
        }
    }
}
