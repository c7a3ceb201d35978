//! The master's part in a fleet without sticky balancing: it announces
//! where this node is reachable, finds the others (for its router and its
//! workers), and serves the peer port: every connection authenticated
//! first, then routed by its first request's session id, like a client's,
//! to the worker that owns the session.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};

use super::Master;
use super::stats::bump;
use crate::ClusterError;
use crate::handoff::HandoffKind;
use crate::peer::PeerDirectory;
use crate::peer::auth::{self, PeerSecret};
use crate::sid::{NodeId, home_of};

/// How often this node renews its entry in the directory (a registry
/// keeps entries for a few times this).
pub(crate) const REGISTER_EVERY: Duration = Duration::from_secs(3);
/// How long a found address is trusted before it is looked up again.
const FOUND_FOR: Duration = Duration::from_secs(5);
/// How long "unknown node" is trusted (a node just starting is found soon).
const UNKNOWN_FOR: Duration = Duration::from_secs(1);

/// This node among its peers.
pub(crate) struct Peering {
    pub(crate) node: NodeId,
    pub(crate) secret: Option<PeerSecret>,
    directory: Option<Arc<dyn PeerDirectory>>,
    found: Mutex<HashMap<NodeId, (Option<SocketAddr>, Instant)>>,
}

impl Peering {
    pub(crate) fn new(
        node: NodeId,
        secret: Option<PeerSecret>,
        directory: Option<Arc<dyn PeerDirectory>>,
    ) -> Peering {
        Peering {
            node,
            secret,
            directory,
            found: Mutex::new(HashMap::new()),
        }
    }

    fn found(&self) -> MutexGuard<'_, HashMap<NodeId, (Option<SocketAddr>, Instant)>> {
        self.found.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where `node` is reachable; none when no directory knows it, or this
    /// node has no peer links.
    pub(crate) async fn lookup(&self, node: NodeId) -> Option<SocketAddr> {
        let directory = self.directory.as_ref()?;
        self.secret.as_ref()?;
        let now = Instant::now();
        if let Some((addr, at)) = self.found().get(&node).copied() {
            let fresh_for = if addr.is_some() {
                FOUND_FOR
            } else {
                UNKNOWN_FOR
            };
            if now.duration_since(at) < fresh_for {
                return addr;
            }
        }
        let addr = directory.lookup(node).await;
        self.found().insert(node, (addr, Instant::now()));
        addr
    }

    /// Announces this node at `addr` every [`REGISTER_EVERY`] until
    /// stopped, then withdraws it at once.
    pub(crate) async fn announce(
        self: Arc<Self>,
        addr: SocketAddr,
        stopping: tokio_util::sync::CancellationToken,
    ) {
        let Some(directory) = self.directory.clone() else {
            return;
        };
        let mut every = tokio::time::interval(REGISTER_EVERY);
        loop {
            tokio::select! {
                _ = every.tick() => directory.register(self.node, addr).await,
                _ = stopping.cancelled() => break,
            }
        }
        directory.deregister(self.node).await;
    }
}

/// Binds the peer port.
pub(super) async fn bind(addr: SocketAddr) -> Result<TcpListener, ClusterError> {
    TcpListener::bind(addr)
        .await
        .map_err(|error| ClusterError::Peer(format!("cannot listen on {addr}: {error}")))
}

/// Accepts peer connections until the master stops.
pub(super) async fn serve_peers(master: Arc<Master>, listener: TcpListener) {
    loop {
        tokio::select! {
            _ = master.stopping.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    tokio::spawn(handle_peer(Arc::clone(&master), stream, remote));
                }
                Err(error) => {
                    tracing::warn!(%error, "peer accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// One peer connection: authenticated, then handed to the worker owning
/// the session its first request names.
async fn handle_peer(master: Arc<Master>, mut stream: TcpStream, remote: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let Some(secret) = master.peering.secret.clone() else {
        return;
    };
    match tokio::time::timeout(auth::HANDSHAKE_TIMEOUT, auth::accept(&mut stream, &secret)).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            bump(&master.stats.peers_refused);
            tracing::info!(%remote, %error, "peer connection refused");
            return;
        }
        Err(_) => {
            bump(&master.stats.peers_refused);
            tracing::info!(%remote, "peer connection refused: no handshake in time");
            return;
        }
    }
    let head = match master.read_head(&mut stream).await {
        Ok(head) => head,
        Err(error) => {
            tracing::debug!(%remote, %error, "peer connection ended before a request");
            return;
        }
    };
    // A peer only forwards requests for this node's sessions.
    let handoff = head
        .sid
        .as_deref()
        .and_then(home_of)
        .filter(|home| home.node == master.peering.node)
        .and_then(|home| {
            master
                .table()
                .workers
                .get(&home.instance)
                .filter(|w| w.ready)
                .map(|w| Arc::clone(&w.handoff))
        });
    match handoff {
        Some(handoff) => {
            if handoff
                .send(&stream, HandoffKind::Peer, &head.bytes)
                .await
                .is_ok()
            {
                bump(&master.stats.peer_handoffs);
            }
        }
        None => {
            let unknown = iocluster_engineio::RequestError::new(
                iocluster_engineio::ErrorCode::SessionIdUnknown,
            )
            .to_http(None, None);
            super::router::respond(stream, unknown, false).await;
        }
    }
}
