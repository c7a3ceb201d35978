//! Accepting connections and routing each by its first request head.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::http::{HeaderMap, HeaderValue, header};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use super::Master;
use crate::handoff::{HandoffKind, HandoffSender};
use crate::head::{HeadError, RequestHead, read_head};
use crate::sid::instance_of;

/// Binds the listening socket: SO_REUSEADDR, dual-stack on `::`.
pub(crate) fn bind(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(false)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(backlog.min(i32::MAX as u32) as i32)?;
    socket.set_nonblocking(true)?;
    TcpListener::from_std(socket.into())
}

pub(crate) async fn accept_loop(master: Arc<Master>, listener: TcpListener) {
    loop {
        tokio::select! {
            _ = master.stopping.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    tokio::spawn(handle(Arc::clone(&master), stream, remote));
                }
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// Where a request goes.
enum Route {
    Worker(Arc<HandoffSender>),
    UnknownSid,
    NoWorker,
}

async fn handle(master: Arc<Master>, mut stream: TcpStream, remote: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let head = match read_head(
        &mut stream,
        master.config.max_head,
        master.config.head_timeout,
    )
    .await
    {
        Ok(head) => head,
        Err(HeadError::TooLarge) => {
            return respond(stream, 431, "Request Header Fields Too Large", "", false).await;
        }
        Err(HeadError::Malformed(_)) => {
            return respond(stream, 400, "Bad Request", "", false).await;
        }
        Err(error) => {
            tracing::debug!(%remote, %error, "connection dropped before routing");
            return;
        }
    };
    if head.path == "/health" && (head.method == "GET" || head.method == "HEAD") {
        let ready = master.table().any_ready();
        let head_only = head.method == "HEAD";
        return if ready {
            respond(stream, 200, "OK", "{\"status\":\"ok\"}", head_only).await
        } else {
            respond(
                stream,
                503,
                "Service Unavailable",
                "{\"status\":\"no worker ready\"}",
                head_only,
            )
            .await
        };
    }
    // A handoff fails only when the worker just died: try another one for
    // requests that name no session.
    for _ in 0..3 {
        match route(&master, &head, remote) {
            Route::Worker(handoff) => {
                match handoff.send(&stream, HandoffKind::Tcp, &head.bytes).await {
                    Ok(()) => return,
                    Err(error) => {
                        tracing::debug!(%error, "handoff failed");
                        if head.sid.is_some() {
                            break;
                        }
                    }
                }
            }
            Route::UnknownSid => break,
            Route::NoWorker => {
                return respond_with(
                    stream,
                    503,
                    "Service Unavailable",
                    "{\"code\":503,\"message\":\"No worker ready\"}",
                    false,
                    &cors_headers(&master, &head),
                )
                .await;
            }
        }
    }
    respond_with(
        stream,
        400,
        "Bad Request",
        "{\"code\":1,\"message\":\"Session ID unknown\"}",
        false,
        &cors_headers(&master, &head),
    )
    .await
}

/// The CORS header lines a worker would add to a response to this request,
/// so that a browser can read the master's errors as Node's: a session
/// unknown here shows as a 400, not as a CORS failure.
fn cors_headers(master: &Master, head: &RequestHead) -> String {
    let Some(cors) = master.config.engine.cors() else {
        return String::new();
    };
    let mut request = HeaderMap::new();
    if let Some(origin) = head
        .origin
        .as_deref()
        .and_then(|o| HeaderValue::from_str(o).ok())
    {
        request.insert(header::ORIGIN, origin);
    }
    let mut response = HeaderMap::new();
    cors.apply(&request, &mut response);
    let mut lines = String::new();
    for (name, value) in &response {
        if let Ok(value) = value.to_str() {
            lines.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    lines
}

fn route(master: &Master, head: &RequestHead, remote: SocketAddr) -> Route {
    let mut table = master.table();
    if let Some(sid) = &head.sid {
        return match instance_of(sid).and_then(|instance| table.workers.get(&instance)) {
            Some(worker) if worker.ready => Route::Worker(Arc::clone(&worker.handoff)),
            _ if !table.any_ready() => Route::NoWorker,
            _ => Route::UnknownSid,
        };
    }
    let now = Instant::now();
    let candidates = table.candidates(now);
    let loads: Vec<_> = candidates.iter().map(|(_, c)| *c).collect();
    let Some(slot) = master.balancer.pick(
        master.config.balance,
        &loads,
        Some(remote.ip()),
        head.forwarded_for.as_deref(),
    ) else {
        return Route::NoWorker;
    };
    let Some((instance, _)) = candidates.iter().find(|(_, c)| c.slot == slot) else {
        return Route::NoWorker;
    };
    match table.workers.get_mut(instance) {
        Some(worker) => {
            worker.handed.push_back(now);
            Route::Worker(Arc::clone(&worker.handoff))
        }
        None => Route::NoWorker,
    }
}

/// Answers a request the master handles itself, and closes.
async fn respond(stream: TcpStream, status: u16, reason: &str, body: &str, head_only: bool) {
    respond_with(stream, status, reason, body, head_only, "").await;
}

/// [`respond`] with more header lines (each ending in CRLF).
async fn respond_with(
    mut stream: TcpStream,
    status: u16,
    reason: &str,
    body: &str,
    head_only: bool,
    headers: &str,
) {
    let content_type = if body.is_empty() {
        "text/plain"
    } else {
        "application/json"
    };
    let mut response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{headers}Connection: close\r\n\r\n",
        body.len()
    );
    if !head_only {
        response.push_str(body);
    }
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
