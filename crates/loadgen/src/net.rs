//! TCP connections from several loopback source addresses.
//!
//! One source address has about 28,000 ephemeral ports, and a port stays in
//! TIME_WAIT for a minute after a client closes first: a handshake run
//! opening thousands of connections a second would run out of ports on
//! 127.0.0.1 alone. Binding each client socket to 127.0.0.1 ..= 127.0.0.N
//! in turn multiplies the four-tuples available by N (the whole of
//! 127.0.0.0/8 is loopback on Linux, no setup needed).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};

use crate::error::ClientError;

/// Opens TCP connections to one server, binding each to the next loopback
/// source address in turn, each connect bounded by a timeout.
#[derive(Debug)]
pub struct Connector {
    server: SocketAddr,
    sources: Vec<Ipv4Addr>,
    next: AtomicUsize,
    timeout: Duration,
}

impl Connector {
    /// A connector to `server` from 127.0.0.1 ..= 127.0.0.`sources` (at
    /// least one), each connect bounded by `timeout`.
    pub fn new(server: SocketAddr, sources: usize, timeout: Duration) -> Connector {
        let sources = (1..=sources.clamp(1, 254) as u8)
            .map(|last| Ipv4Addr::new(127, 0, 0, last))
            .collect();
        Connector {
            server,
            sources,
            next: AtomicUsize::new(0),
            timeout,
        }
    }

    /// The server connected to.
    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// The bound of one step (connect, request, read, write).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A connector to the same server from the next source address only,
    /// for every connection of one session: a real client keeps its address
    /// across its requests and upgrade, and load balancers that are sticky
    /// by client address (`ip-hash`, nginx `hash $remote_addr`) rely on it.
    pub fn pinned(&self) -> Connector {
        Connector {
            server: self.server,
            sources: vec![self.next_source()],
            next: AtomicUsize::new(0),
            timeout: self.timeout,
        }
    }

    /// A new connection from the next source address, with `TCP_NODELAY`.
    pub async fn connect(&self) -> Result<TcpStream, ClientError> {
        let source = self.next_source();
        let socket = bound_socket(source)?;
        let stream = tokio::time::timeout(self.timeout, socket.connect(self.server))
            .await
            .map_err(|_| ClientError::Timeout("a TCP connect"))??;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    /// The source address whose turn it is.
    fn next_source(&self) -> Ipv4Addr {
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        self.sources[turn % self.sources.len()]
    }
}

/// A TCP socket bound to `source` with any port. The port is chosen at
/// connect time (`IP_BIND_ADDRESS_NO_PORT`), unique per 4-tuple rather than
/// per source address: binding first made the kernel search the source's
/// whole port range for a free port at every connect, which took most of a
/// generator's CPU once a source held ten thousand connections. Where the
/// option is missing, the port is chosen at bind as before.
fn bound_socket(source: Ipv4Addr) -> Result<TcpSocket, ClientError> {
    let socket = TcpSocket::new_v4()?;
    let _ = nix::sys::socket::setsockopt(
        &socket,
        nix::sys::socket::sockopt::IpBindAddressNoPort,
        &true,
    );
    socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connections_rotate_over_source_addresses() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let connector = Connector::new(listener.local_addr().unwrap(), 3, Duration::from_secs(2));
        let mut peers = Vec::new();
        let mut streams = Vec::new();
        for _ in 0..4 {
            streams.push(connector.connect().await.unwrap());
            let (_accepted, peer) = listener.accept().await.unwrap();
            peers.push(peer.ip());
        }
        let expected: Vec<IpAddr> = [1, 2, 3, 1]
            .into_iter()
            .map(|last| IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
            .collect();
        assert_eq!(peers, expected);
    }

    #[tokio::test]
    async fn pinned_connector_keeps_one_source_address_per_session() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let connector = Connector::new(listener.local_addr().unwrap(), 3, Duration::from_secs(2));
        let mut peers = Vec::new();
        let mut streams = Vec::new();
        for _ in 0..2 {
            let session = connector.pinned();
            for _ in 0..3 {
                streams.push(session.connect().await.unwrap());
                let (_accepted, peer) = listener.accept().await.unwrap();
                peers.push(peer.ip());
            }
        }
        let expected: Vec<IpAddr> = [1, 1, 1, 2, 2, 2]
            .into_iter()
            .map(|last| IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
            .collect();
        assert_eq!(peers, expected);
    }

    #[tokio::test]
    async fn closed_port_counts_as_connect_refused() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let connector = Connector::new(addr, 1, Duration::from_secs(2));
        let error = connector.connect().await.unwrap_err();
        assert!(matches!(error, ClientError::ConnectRefused), "{error}");
    }
}
