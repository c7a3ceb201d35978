//! Serving an axum app on connections: accepted here, or handed in with
//! bytes already read.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

use crate::config::EngineConfig;
use crate::io::PrefixedIo;
use crate::stall::WriteStallLimit;

/// Bounds on each connection served, so that no client can hold one (and
/// what it buffers) for ever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// How long a client may take to send a request head on a kept-alive
    /// connection. Default 30 s.
    pub header_read_timeout: Duration,
    /// How long a write may make no progress (the client does not read, or
    /// vanished without a reset) before the connection is closed. Default
    /// 45 s, the default ping interval plus ping timeout.
    pub write_stall: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits::for_engine(&EngineConfig::default())
    }
}

impl ConnectionLimits {
    /// The limits that suit an engine: a write may stall for as long as
    /// the engine waits for a pong (ping interval plus ping timeout).
    pub fn for_engine(config: &EngineConfig) -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(30),
            write_stall: config.ping_interval + config.ping_timeout,
        }
    }
}

/// Serves HTTP/1.1 (with upgrades) on one connection whose first bytes,
/// `prefix`, were already read from it. Ends when the connection closes.
///
/// The client's address is put in each request as
/// [`ConnectInfo<SocketAddr>`](axum::extract::ConnectInfo).
pub async fn serve_connection(
    stream: TcpStream,
    prefix: Bytes,
    app: Router,
    limits: ConnectionLimits,
) -> Result<(), hyper::Error> {
    let _ = stream.set_nodelay(true);
    let remote = stream.peer_addr().ok();
    serve_io(stream, remote, prefix, app, limits).await
}

/// Serves HTTP/1.1 (with upgrades) on any connected byte stream (a Unix
/// socket from the cluster's proxy, say), replaying `prefix` first and
/// telling the app the client is at `remote`.
pub async fn serve_io<I>(
    io: I,
    remote: Option<SocketAddr>,
    prefix: Bytes,
    app: Router,
    limits: ConnectionLimits,
) -> Result<(), hyper::Error>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(WriteStallLimit::new(
        PrefixedIo::new(prefix, io),
        limits.write_stall,
    ));
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        if let Some(remote) = remote {
            request.extensions_mut().insert(ConnectInfo(remote));
        }
        let app = app.clone();
        async move {
            let response = app.oneshot(request.map(axum::body::Body::new)).await;
            Ok::<_, Infallible>(match response {
                Ok(response) => response,
                Err(never) => match never {},
            })
        }
    });
    hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .serve_connection(io, service)
        .with_upgrades()
        .await
}

/// Accepts connections forever and serves `app` on each, with the default
/// [`ConnectionLimits`].
pub async fn serve(listener: TcpListener, app: Router) -> std::io::Result<()> {
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: wait, then go on.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let app = app.clone();
        tokio::spawn(async move {
            let limits = ConnectionLimits::default();
            if let Err(error) = serve_connection(stream, Bytes::new(), app, limits).await {
                tracing::debug!(%remote, %error, "connection ended with an error");
            }
        });
    }
}
