//! Handing a connection to a worker: its file descriptor and a few bytes, as
//! one datagram over a Unix socketpair (SCM_RIGHTS), so both arrive together
//! or not at all. The first byte says what the descriptor is.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use bytes::Bytes;
use sendfd::{RecvWithFd, SendWithFd};
use tokio::net::UnixDatagram;

/// What a handed-over descriptor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandoffKind {
    /// A client's TCP connection; the bytes are what the master already
    /// read from it.
    Tcp,
    /// A Unix stream from another worker proxying a request for a session
    /// of this one; the bytes are the client's address.
    ProxyServer,
    /// The requesting end of such a stream; the bytes are the request
    /// number (u64, big-endian).
    ProxyClient,
    /// An authenticated connection from another node forwarding requests
    /// for sessions of this worker; the bytes are what the master already
    /// read from it. Its requests say who the client is
    /// (`x-iocluster-client-addr`), which only such connections are
    /// trusted with.
    Peer,
    /// A client's TLS connection, unread: the worker terminates TLS.
    Tls,
}

impl HandoffKind {
    fn byte(self) -> u8 {
        match self {
            HandoffKind::Tcp => 0,
            HandoffKind::ProxyServer => 1,
            HandoffKind::ProxyClient => 2,
            HandoffKind::Peer => 3,
            HandoffKind::Tls => 4,
        }
    }

    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(HandoffKind::Tcp),
            1 => Some(HandoffKind::ProxyServer),
            2 => Some(HandoffKind::ProxyClient),
            3 => Some(HandoffKind::Peer),
            4 => Some(HandoffKind::Tls),
            _ => None,
        }
    }
}

/// One received handoff.
#[derive(Debug)]
pub(crate) struct Handoff {
    /// What the descriptor is.
    pub kind: HandoffKind,
    /// The descriptor, now owned by this process.
    pub fd: OwnedFd,
    /// The bytes that came with it.
    pub bytes: Bytes,
}

/// The master's end: sends connections.
#[derive(Debug)]
pub(crate) struct HandoffSender(UnixDatagram);

impl HandoffSender {
    /// Wraps the master's end of the socketpair.
    pub(crate) fn new(socket: UnixDatagram) -> Self {
        HandoffSender(socket)
    }

    /// Sends `fd` with its kind and bytes. The caller closes its copy of the
    /// descriptor afterwards.
    pub(crate) async fn send(
        &self,
        fd: &impl AsRawFd,
        kind: HandoffKind,
        bytes: &[u8],
    ) -> io::Result<()> {
        let mut datagram = Vec::with_capacity(1 + bytes.len());
        datagram.push(kind.byte());
        datagram.extend_from_slice(bytes);
        let fds = [fd.as_raw_fd()];
        loop {
            self.0.writable().await?;
            match self.0.send_with_fd(&datagram, &fds) {
                Ok(_) => return Ok(()),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                Err(error) => return Err(error),
            }
        }
    }
}

/// The worker's end: receives connections.
#[derive(Debug)]
pub(crate) struct HandoffReceiver {
    socket: UnixDatagram,
    max_bytes: usize,
}

impl HandoffReceiver {
    /// Wraps the worker's end; datagrams carry at most `max_bytes` besides
    /// their kind.
    pub(crate) fn new(socket: UnixDatagram, max_bytes: usize) -> Self {
        HandoffReceiver { socket, max_bytes }
    }

    /// The next handoff. Datagrams without a descriptor, of an unknown kind
    /// or too large are dropped (their descriptor closed).
    pub(crate) async fn recv(&self) -> io::Result<Handoff> {
        let mut buf = vec![0u8; self.max_bytes + 2];
        loop {
            self.socket.readable().await?;
            let mut fds: [RawFd; 1] = [-1];
            match self.socket.recv_with_fd(&mut buf, &mut fds) {
                Ok((0, 0)) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok((len, 1)) => {
                    // SAFETY: the kernel just installed this descriptor in our
                    // table for us; nothing else owns it.
                    let fd = unsafe { OwnedFd::from_raw_fd(fds[0]) };
                    let kind = buf.first().copied().and_then(HandoffKind::from_byte);
                    match kind {
                        Some(kind) if len <= self.max_bytes + 1 => {
                            return Ok(Handoff {
                                kind,
                                fd,
                                bytes: Bytes::copy_from_slice(&buf[1..len]),
                            });
                        }
                        _ => tracing::warn!(len, "malformed handoff dropped"),
                    }
                }
                Ok(_) => tracing::warn!("handoff without a descriptor skipped"),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                Err(error) => return Err(error),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_connection_arrives_with_its_kind_and_bytes() {
        let (master, worker) = UnixDatagram::pair().unwrap();
        let sender = HandoffSender::new(master);
        let receiver = HandoffReceiver::new(worker, 1024);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        sender
            .send(&accepted, HandoffKind::Tcp, b"GET / HTTP/1.1\r\n")
            .await
            .unwrap();
        drop(accepted);
        let handoff = receiver.recv().await.unwrap();
        assert_eq!(handoff.kind, HandoffKind::Tcp);
        assert_eq!(&handoff.bytes[..], b"GET / HTTP/1.1\r\n");
        let std_stream = std::net::TcpStream::from(handoff.fd);
        std_stream.set_nonblocking(true).unwrap();
        let mut stream = tokio::net::TcpStream::from_std(std_stream).unwrap();
        stream.write_all(b"hello").await.unwrap();
        let mut buf = [0u8; 5];
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hello");
    }
}
