//! Peers: the other nodes of a fleet. A request whose session lives on
//! another node is forwarded to that node over an authenticated peer link,
//! so any node serves any session and the fleet needs no sticky balancer.
//!
//! - [`PeerDirectory`]: where a node is reachable (a static list, or a
//!   registry the layer above provides: Redis with `--redis`);
//! - [`auth`]: the mutual HMAC challenge every peer connection starts with;
//! - [`frame`]: the frames of a link that carries many forwarded requests.

pub(crate) mod auth;
pub(crate) mod frame;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use iocluster_socketio::adapter::BoxFuture;

use crate::sid::NodeId;

/// Where the nodes of a fleet are reachable for each other.
pub trait PeerDirectory: Send + Sync + 'static {
    /// Announces (or refreshes) that `node` is reachable at `addr`; the
    /// master calls it every few seconds, so an entry that stops being
    /// refreshed may expire (a node that died without deregistering).
    fn register(&self, node: NodeId, addr: SocketAddr) -> BoxFuture<'static, ()>;
    /// Withdraws `node` (it is shutting down).
    fn deregister(&self, node: NodeId) -> BoxFuture<'static, ()>;
    /// Where `node` is reachable; none when it is unknown or gone.
    fn lookup(&self, node: NodeId) -> BoxFuture<'static, Option<SocketAddr>>;
}

/// Connects the directory once the master's runtime runs (given to
/// [`crate::ClusterBuilder::peer_directory`]).
pub type ConnectDirectory =
    Arc<dyn Fn() -> BoxFuture<'static, Result<Arc<dyn PeerDirectory>, String>> + Send + Sync>;

/// A fixed list of peers (`--peers ID=HOST:PORT,...`), for fleets without
/// a registry: nothing to register.
#[derive(Debug, Clone, Default)]
pub struct StaticPeers(HashMap<NodeId, SocketAddr>);

impl StaticPeers {
    /// The list.
    pub fn new(peers: impl IntoIterator<Item = (NodeId, SocketAddr)>) -> Self {
        StaticPeers(peers.into_iter().collect())
    }
}

impl PeerDirectory for StaticPeers {
    fn register(&self, _node: NodeId, _addr: SocketAddr) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
    fn deregister(&self, _node: NodeId) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
    fn lookup(&self, node: NodeId) -> BoxFuture<'static, Option<SocketAddr>> {
        let addr = self.0.get(&node).copied();
        Box::pin(async move { addr })
    }
}
