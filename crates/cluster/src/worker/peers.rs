//! Dialing other nodes' peer ports: a TCP connection, authenticated with
//! the fleet's secret before anything else crosses it. A worker dials
//! once per worker of another node it forwards to, for a link that then
//! carries every request and tunnel to that worker ([`super::mux`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;

use super::exchange::Conn;
use crate::peer::auth::{self, PeerSecret};

/// How long connecting to a peer may take: a dead node must not hold a
/// client's request (it gets `Session ID unknown` and reconnects
/// elsewhere).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// What a worker needs to dial its peers.
pub(crate) struct PeerDialer {
    secret: Option<PeerSecret>,
}

impl PeerDialer {
    /// A dialer for this worker; without a secret it has no peer links.
    pub(crate) fn new(secret: Option<PeerSecret>) -> Arc<PeerDialer> {
        Arc::new(PeerDialer { secret })
    }

    /// Whether this node has peer links.
    pub(crate) fn enabled(&self) -> bool {
        self.secret.is_some()
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
