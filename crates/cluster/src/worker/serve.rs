//! What a worker does with each handoff from the master: serve a client's
//! TCP connection, serve another node's authenticated connection for our
//! sessions (requests one by one, or a link of many), serve a stream from
//! another worker that proxies a request for one of our sessions, or
//! complete our own proxy request.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use iocluster_engineio::ConnectionLimits;
use tokio::net::UnixStream;

use super::link::MasterLink;
use crate::handoff::{Handoff, HandoffKind};
use crate::tls::Acceptor;

/// The app as clients reach it, and as other nodes do (who say who the
/// client is); the TLS acceptor when the public port speaks TLS.
pub(crate) struct Routers {
    pub(crate) public: Router,
    pub(crate) peer: Router,
    pub(crate) tls: Option<Arc<Acceptor>>,
}

/// How long a TLS handshake may take.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves one handoff; each connection in a task of its own.
pub(crate) fn serve_handoff(
    handoff: Handoff,
    routers: &Routers,
    limits: ConnectionLimits,
    link: &MasterLink,
) {
    match handoff.kind {
        HandoffKind::Tcp => {
            let Some(stream) = tcp_stream(handoff.fd) else {
                return;
            };
            let router = routers.public.clone();
            tokio::spawn(async move {
                if let Err(error) =
                    iocluster_engineio::serve_connection(stream, handoff.bytes, router, limits)
                        .await
                {
                    tracing::debug!(%error, "connection ended with an error");
                }
            });
        }
        HandoffKind::Tls => {
            let (Some(stream), Some(acceptor)) = (tcp_stream(handoff.fd), routers.tls.as_ref())
            else {
                return;
            };
            let acceptor = acceptor.acceptor();
            let router = routers.public.clone();
            tokio::spawn(async move {
                let remote = stream.peer_addr().ok();
                let _ = stream.set_nodelay(true);
                let tls = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                    .await
                {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(error)) => {
                        tracing::debug!(?remote, %error, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(?remote, "TLS handshake not done in time");
                        return;
                    }
                };
                if let Err(error) =
                    iocluster_engineio::serve_io(tls, remote, Bytes::new(), router, limits).await
                {
                    tracing::debug!(%error, "TLS connection ended with an error");
                }
            });
        }
        HandoffKind::Peer => {
            let Some(stream) = tcp_stream(handoff.fd) else {
                return;
            };
            let router = routers.peer.clone();
            if let Some(head) = super::mux::link_request(&handoff.bytes) {
                let frames = handoff.bytes.slice(head..);
                tokio::spawn(super::mux::server::serve_link(
                    stream, frames, router, limits,
                ));
                return;
            }
            tokio::spawn(async move {
                if let Err(error) =
                    iocluster_engineio::serve_io(stream, None, handoff.bytes, router, limits).await
                {
                    tracing::debug!(%error, "peer connection ended with an error");
                }
            });
        }
        HandoffKind::ProxyServer => {
            let Some(stream) = unix_stream(handoff.fd) else {
                return;
            };
            // The bytes are the client's address, for `socket.handshake`.
            let remote = std::str::from_utf8(&handoff.bytes)
                .ok()
                .and_then(|r| r.parse().ok());
            let router = routers.public.clone();
            tokio::spawn(async move {
                if let Err(error) =
                    iocluster_engineio::serve_io(stream, remote, Bytes::new(), router, limits).await
                {
                    tracing::debug!(%error, "proxied connection ended with an error");
                }
            });
        }
        HandoffKind::ProxyClient => {
            // The bytes are the number of our connect request.
            let Ok(request) = <[u8; 8]>::try_from(&handoff.bytes[..]) else {
                return;
            };
            link.connected(u64::from_be_bytes(request), unix_stream(handoff.fd));
        }
    }
}

fn tcp_stream(fd: OwnedFd) -> Option<tokio::net::TcpStream> {
    let stream = std::net::TcpStream::from(fd);
    stream.set_nonblocking(true).ok()?;
    tokio::net::TcpStream::from_std(stream).ok()
}

fn unix_stream(fd: OwnedFd) -> Option<UnixStream> {
    let stream = std::os::unix::net::UnixStream::from(fd);
    stream.set_nonblocking(true).ok()?;
    UnixStream::from_std(stream).ok()
}
