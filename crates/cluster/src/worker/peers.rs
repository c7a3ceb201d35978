//! The connections a worker keeps to other nodes' peer ports, to forward
//! requests for their sessions: HTTP/1.1 kept alive and pooled, one pool
//! per (node address, worker instance), so a polling session pays neither
//! a TCP nor an authentication handshake per request, and each pooled
//! connection lands on the worker that owns the sessions sent over it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Body;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use crate::peer::auth::{self, PeerSecret};
use crate::sid::InstanceId;

/// How long connecting to a peer may take: a dead node must not hold a
/// client's request (it gets `Session ID unknown` and reconnects
/// elsewhere).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long an idle pooled connection is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Connects to a peer's port and authenticates, for the pool.
#[derive(Clone)]
pub(crate) struct PeerConnector {
    addr: SocketAddr,
    secret: PeerSecret,
}

impl tower::Service<axum::http::Uri> for PeerConnector {
    type Response = TokioIo<TcpStream>;
    type Error = std::io::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = std::io::Result<TokioIo<TcpStream>>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: axum::http::Uri) -> Self::Future {
        let (addr, secret) = (self.addr, self.secret.clone());
        Box::pin(async move {
            let deadline = CONNECT_TIMEOUT + auth::HANDSHAKE_TIMEOUT;
            tokio::time::timeout(deadline, async {
                let mut stream =
                    tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await??;
                stream.set_nodelay(true)?;
                auth::connect(&mut stream, &secret).await?;
                Ok(TokioIo::new(stream))
            })
            .await?
        })
    }
}

/// The pools of one worker.
pub(crate) struct PeerClients {
    secret: Option<PeerSecret>,
    pools: Mutex<HashMap<(SocketAddr, InstanceId), Client<PeerConnector, Body>>>,
}

impl PeerClients {
    pub(crate) fn new(secret: Option<PeerSecret>) -> PeerClients {
        PeerClients {
            secret,
            pools: Mutex::new(HashMap::new()),
        }
    }

    fn pools(
        &self,
    ) -> MutexGuard<'_, HashMap<(SocketAddr, InstanceId), Client<PeerConnector, Body>>> {
        self.pools.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The client for worker `instance` of the node at `addr`; none when
    /// this node has no peer links.
    pub(crate) fn client(
        &self,
        addr: SocketAddr,
        instance: InstanceId,
    ) -> Option<Client<PeerConnector, Body>> {
        let secret = self.secret.clone()?;
        let mut pools = self.pools();
        let client = pools.entry((addr, instance)).or_insert_with(|| {
            Client::builder(TokioExecutor::new())
                .pool_idle_timeout(IDLE_TIMEOUT)
                .build(PeerConnector { addr, secret })
        });
        Some(client.clone())
    }
}
