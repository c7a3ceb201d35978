//! The peer directory of a fleet synced through Redis: each node announces
//! where its peer port is (`iocluster:peer:<node>`, expiring unless
//! renewed) and looks the others up there, so any node serves any session
//! (see `--peer-listen`).

use std::net::SocketAddr;
use std::sync::Arc;

use fred::clients::Client;
use fred::interfaces::KeysInterface;
use fred::types::Expiration;
use iocluster_cluster::NodeId;
use iocluster_cluster::peer::{ConnectDirectory, PeerDirectory};
use iocluster_redis::fred;
use iocluster_socketio::adapter::BoxFuture;

/// How long an entry lives unless renewed (the master renews every 3 s):
/// a node that died without withdrawing is forgotten this soon.
const ENTRY_TTL_SECS: i64 = 10;

/// Peers in Redis.
#[derive(Clone)]
pub struct RedisPeerDirectory {
    client: Client,
}

impl std::fmt::Debug for RedisPeerDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisPeerDirectory")
    }
}

fn key(node: NodeId) -> String {
    format!("iocluster:peer:{}", node.0)
}

impl RedisPeerDirectory {
    /// Connects to Redis at `url`.
    pub async fn connect(url: &str) -> Result<Self, iocluster_redis::Error> {
        Ok(RedisPeerDirectory {
            client: iocluster_redis::connect_client(url).await?,
        })
    }

    /// Connects the directory of the Redis at `url` when a master starts.
    pub fn connector(url: String) -> ConnectDirectory {
        Arc::new(move || {
            let url = url.clone();
            Box::pin(async move {
                let directory = RedisPeerDirectory::connect(&url)
                    .await
                    .map_err(|error| format!("cannot connect to Redis at {url}: {error}"))?;
                Ok(Arc::new(directory) as Arc<dyn PeerDirectory>)
            })
        })
    }
}

impl PeerDirectory for RedisPeerDirectory {
    fn register(&self, node: NodeId, addr: SocketAddr) -> BoxFuture<'static, ()> {
        let client = self.client.clone();
        Box::pin(async move {
            let set: Result<(), _> = client
                .set(
                    key(node),
                    addr.to_string(),
                    Some(Expiration::EX(ENTRY_TTL_SECS)),
                    None,
                    false,
                )
                .await;
            if let Err(error) = set {
                tracing::warn!(%error, "cannot announce this node in Redis");
            }
        })
    }

    fn deregister(&self, node: NodeId) -> BoxFuture<'static, ()> {
        let client = self.client.clone();
        Box::pin(async move {
            let _: Result<i64, _> = client.del(key(node)).await;
        })
    }

    fn lookup(&self, node: NodeId) -> BoxFuture<'static, Option<SocketAddr>> {
        let client = self.client.clone();
        Box::pin(async move {
            let addr: Option<String> = client.get(key(node)).await.ok()?;
            addr?.parse().ok()
        })
    }
}
