//! The connections a worker keeps to other nodes' peer ports, to forward
//! requests for their sessions: authenticated once, kept alive and pooled
//! by (node address, worker instance), so a polling session pays neither
//! a TCP nor an authentication handshake per request, and each pooled
//! connection lands on the worker that owns the sessions sent over it
//! (the owner's master routes a peer connection by its first request).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::net::TcpStream;

use super::exchange::Conn;
use crate::peer::auth::{self, PeerSecret};
use crate::sid::InstanceId;

/// How long connecting to a peer may take: a dead node must not hold a
/// client's request (it gets `Session ID unknown` and reconnects
/// elsewhere).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long an idle pooled connection is kept: less than the owner keeps
/// an idle kept-alive connection open (its head-read timeout, 30 s), so
/// a pooled connection is not closed by the owner as it is reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(20);
/// The most idle connections kept per owning worker; more are closed.
const MAX_IDLE: usize = 1024;

/// Where a pooled connection goes: a worker of a node.
pub(crate) type PeerKey = (SocketAddr, InstanceId);

struct Idle {
    conn: Conn<TcpStream>,
    since: Instant,
}

/// The pooled peer connections of one worker.
pub(crate) struct PeerPool {
    secret: Option<PeerSecret>,
    idle: Mutex<Pool>,
}

struct Pool {
    by_owner: HashMap<PeerKey, Vec<Idle>>,
    swept: Instant,
}

impl PeerPool {
    /// A pool for this worker; without a secret it has no peer links.
    pub(crate) fn new(secret: Option<PeerSecret>) -> Arc<PeerPool> {
        Arc::new(PeerPool {
            secret,
            idle: Mutex::new(Pool {
                by_owner: HashMap::new(),
                swept: Instant::now(),
            }),
        })
    }

    /// Whether this node has peer links.
    pub(crate) fn enabled(&self) -> bool {
        self.secret.is_some()
    }

    /// The idle connection to `key` used last, if one is fresh.
    pub(crate) fn take(&self, key: PeerKey) -> Option<Conn<TcpStream>> {
        let mut pool = self.idle.lock();
        let idle = pool.by_owner.get_mut(&key)?;
        let newest = idle.pop()?;
        if newest.since.elapsed() < IDLE_TIMEOUT {
            return Some(newest.conn);
        }
        // The newest is stale: so are the others.
        pool.by_owner.remove(&key);
        None
    }

    /// Puts a connection whose last answer was read whole back in the
    /// pool; stale connections are dropped on the way, and so is one that
    /// holds bytes nobody asked for (they would be read as the next
    /// request's answer).
    pub(crate) fn put(&self, key: PeerKey, conn: Conn<TcpStream>) {
        if !conn.buf.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut pool = self.idle.lock();
        if now.duration_since(pool.swept) >= IDLE_TIMEOUT {
            pool.swept = now;
            pool.by_owner.retain(|_, idle| {
                idle.retain(|c| now.duration_since(c.since) < IDLE_TIMEOUT);
                !idle.is_empty()
            });
        }
        let idle = pool.by_owner.entry(key).or_default();
        if idle.len() < MAX_IDLE {
            idle.push(Idle { conn, since: now });
        }
    }

    /// A new authenticated connection to the peer port at `addr`.
    pub(crate) async fn connect(&self, addr: SocketAddr) -> std::io::Result<Conn<TcpStream>> {
        let secret = self
            .secret
            .as_ref()
            .ok_or_else(|| std::io::Error::other("no peer secret"))?;
        let deadline = CONNECT_TIMEOUT + auth::HANDSHAKE_TIMEOUT;
        tokio::time::timeout(deadline, async {
            let mut stream =
                tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await??;
            stream.set_nodelay(true)?;
            auth::connect(&mut stream, secret).await?;
            Ok(Conn::new(stream))
        })
        .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn connection(listener: &tokio::net::TcpListener) -> Conn<TcpStream> {
        let addr = listener.local_addr().unwrap();
        let (stream, _) = tokio::join!(TcpStream::connect(addr), listener.accept());
        Conn::new(stream.unwrap())
    }

    #[tokio::test]
    async fn the_pool_gives_back_the_last_clean_connection_per_owner() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let pool = PeerPool::new(None);
        let (one, two) = ((addr, InstanceId(1)), (addr, InstanceId(2)));
        assert!(pool.take(one).is_none());

        let first = connection(&listener).await;
        let second = connection(&listener).await;
        let second_port = second.stream.local_addr().unwrap().port();
        pool.put(one, first);
        pool.put(one, second);
        let taken = pool.take(one).unwrap();
        assert_eq!(taken.stream.local_addr().unwrap().port(), second_port);
        assert!(pool.take(two).is_none(), "pooled per owning worker");

        // Unasked-for bytes would be read as the next answer.
        let mut dirty = connection(&listener).await;
        dirty.buf.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        pool.put(two, dirty);
        assert!(pool.take(two).is_none());
        assert!(pool.take(one).is_some(), "the first one is still there");
        assert!(pool.take(one).is_none());
    }
}
