//! Accepting connections and routing each by its first request head.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::http::{HeaderValue, Response, StatusCode, header};
use iocluster_engineio::{ErrorCode, RequestError};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use super::Master;
use super::stats::bump;
use super::table::Table;
use crate::config::Balance;
use crate::handoff::{HandoffKind, HandoffSender};
use crate::head::{HeadError, RequestHead};
use crate::sid::{SessionHome, home_of};

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
                    bump(&master.stats.accepted);
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
pub(super) enum Route {
    Worker(Arc<HandoffSender>),
    UnknownSid,
    NoWorker,
}

async fn handle(master: Arc<Master>, mut stream: TcpStream, remote: SocketAddr) {
    let _ = stream.set_nodelay(true);
    if master.config.tls.is_some() {
        return super::tls_port::handle(master, stream, remote).await;
    }
    let head = match master.read_head(&mut stream).await {
        Ok(head) => head,
        Err(HeadError::TooLarge) => {
            bump(&master.stats.large_heads);
            tracing::info!(%remote, "request head too large: 431");
            return respond(
                stream,
                plain(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
                false,
            )
            .await;
        }
        Err(HeadError::Malformed(error)) => {
            bump(&master.stats.bad_heads);
            tracing::info!(%remote, %error, "malformed request head: 400");
            return respond(stream, plain(StatusCode::BAD_REQUEST), false).await;
        }
        Err(HeadError::Timeout) => {
            bump(&master.stats.head_timeouts);
            tracing::info!(%remote, "no request head within the head timeout: dropped");
            return;
        }
        Err(error) => {
            tracing::debug!(%remote, %error, "connection dropped before routing");
            return;
        }
    };
    if head.path == "/health" && (head.method == "GET" || head.method == "HEAD") {
        let head_only = head.method == "HEAD";
        let ready = master.table().any_ready();
        return respond(stream, health(ready), head_only).await;
    }
    let origin = head
        .origin
        .as_deref()
        .and_then(|o| HeaderValue::from_str(o).ok());
    // A session of another node: any worker forwards the request to that
    // node (or the client hears at once that nobody knows the session).
    let mut home = head.sid.as_deref().map(home_of);
    if let Some(Some(foreign)) = home.filter(|h| h.is_some_and(|h| h.node != master.peering.node)) {
        if master.peering.lookup(foreign.node).await.is_none() {
            let unknown = RequestError::new(ErrorCode::SessionIdUnknown)
                .to_http(master.cors.as_ref(), origin.as_ref());
            return respond(stream, unknown, false).await;
        }
        bump(&master.stats.forwarded);
        home = None;
    }
    // A handoff fails only when the worker just died: try another one for
    // requests that name no session.
    for _ in 0..3 {
        match route(&master, home, &head, remote) {
            Route::Worker(handoff) => {
                match handoff.send(&stream, HandoffKind::Tcp, &head.bytes).await {
                    Ok(()) => {
                        bump(&master.stats.handoffs);
                        return;
                    }
                    Err(error) => {
                        tracing::debug!(%error, "handoff failed");
                        if home.is_some() {
                            break;
                        }
                    }
                }
            }
            Route::UnknownSid => break,
            Route::NoWorker => {
                bump(&master.stats.no_worker);
                let mut response = json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "{\"code\":503,\"message\":\"No worker ready\"}",
                );
                if let Some(cors) = &master.cors {
                    cors.apply(origin.as_ref(), response.headers_mut());
                }
                return respond(stream, response, false).await;
            }
        }
    }
    let unknown = RequestError::new(ErrorCode::SessionIdUnknown)
        .to_http(master.cors.as_ref(), origin.as_ref());
    respond(stream, unknown, false).await
}

/// Where a request goes: to the worker its session names (`home`: the
/// request names a session, of this node if any), else to one the
/// balancing method picks.
fn route(
    master: &Master,
    home: Option<Option<SessionHome>>,
    head: &RequestHead,
    remote: SocketAddr,
) -> Route {
    let mut table = master.table();
    if let Some(home) = home {
        return match home.and_then(|home| table.workers.get(&home.instance)) {
            Some(worker) if worker.ready => Route::Worker(Arc::clone(&worker.handoff)),
            _ if !table.any_ready() => Route::NoWorker,
            _ => Route::UnknownSid,
        };
    }
    pick(
        master,
        &mut table,
        master.config.balance,
        remote,
        head.forwarded_for.as_deref(),
    )
}

/// A worker for a connection that names no session, by `balance`.
pub(super) fn pick(
    master: &Master,
    table: &mut Table,
    balance: Balance,
    remote: SocketAddr,
    forwarded_for: Option<&str>,
) -> Route {
    let now = Instant::now();
    let candidates = table.candidates(now);
    let loads: Vec<_> = candidates.iter().map(|(_, c)| *c).collect();
    let Some(slot) = master
        .balancer
        .pick(balance, &loads, Some(remote.ip()), forwarded_for)
    else {
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

/// A response with an empty text body.
pub(super) fn plain(status: StatusCode) -> Response<String> {
    let mut response = Response::new(String::new());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// A response with a JSON body.
pub(super) fn json(status: StatusCode, body: &str) -> Response<String> {
    let mut response = Response::new(body.to_owned());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The answer to `/health`: 200 while a worker takes connections, else 503.
fn health(ready: bool) -> Response<String> {
    if ready {
        json(StatusCode::OK, "{\"status\":\"ok\"}")
    } else {
        json(
            StatusCode::SERVICE_UNAVAILABLE,
            "{\"status\":\"no worker ready\"}",
        )
    }
}

/// Writes a response the master gives itself (an HTTP/1.1 head with
/// `Content-Length` and `Connection: close`, then the body unless
/// `head_only`), and closes.
pub(super) async fn respond(mut stream: TcpStream, response: Response<String>, head_only: bool) {
    let (parts, body) = response.into_parts();
    let mut bytes = format!(
        "HTTP/1.1 {} {}\r\n",
        parts.status.as_u16(),
        parts.status.canonical_reason().unwrap_or("")
    );
    for (name, value) in &parts.headers {
        if let Ok(value) = value.to_str() {
            bytes.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    bytes.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    if !head_only {
        bytes.push_str(&body);
    }
    let _ = stream.write_all(bytes.as_bytes()).await;
    let _ = stream.shutdown().await;
}
