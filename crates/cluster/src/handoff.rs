//! Handing a connection to a worker: its file descriptor and the bytes the
//! master already read, as one datagram over a Unix socketpair (SCM_RIGHTS),
//! so both arrive together or not at all.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use bytes::Bytes;
use sendfd::{RecvWithFd, SendWithFd};
use tokio::net::UnixDatagram;

/// The master's end: sends connections.
#[derive(Debug)]
pub struct HandoffSender(UnixDatagram);

impl HandoffSender {
    /// Wraps the master's end of the socketpair.
    pub fn new(socket: UnixDatagram) -> Self {
        HandoffSender(socket)
    }

    /// Sends `fd` with the bytes already read from it. The caller closes its
    /// copy of the descriptor afterwards.
    pub async fn send(&self, fd: &impl AsRawFd, bytes: &[u8]) -> io::Result<()> {
        let fds = [fd.as_raw_fd()];
        loop {
            self.0.writable().await?;
            match self.0.send_with_fd(bytes, &fds) {
                Ok(_) => return Ok(()),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                Err(error) => return Err(error),
            }
        }
    }
}

/// The worker's end: receives connections.
#[derive(Debug)]
pub struct HandoffReceiver {
    socket: UnixDatagram,
    max_bytes: usize,
}

impl HandoffReceiver {
    /// Wraps the worker's end; datagrams carry at most `max_bytes`.
    pub fn new(socket: UnixDatagram, max_bytes: usize) -> Self {
        HandoffReceiver { socket, max_bytes }
    }

    /// The next connection and its bytes already read. Datagrams without a
    /// descriptor are skipped.
    pub async fn recv(&self) -> io::Result<(OwnedFd, Bytes)> {
        let mut buf = vec![0u8; self.max_bytes + 1];
        loop {
            self.socket.readable().await?;
            let mut fds: [RawFd; 1] = [-1];
            match self.socket.recv_with_fd(&mut buf, &mut fds) {
                Ok((0, 0)) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok((len, 1)) => {
                    // SAFETY: the kernel just installed this descriptor in our
                    // table for us; nothing else owns it.
                    let fd = unsafe { OwnedFd::from_raw_fd(fds[0]) };
                    if len > self.max_bytes {
                        tracing::warn!(len, "handoff larger than expected: connection dropped");
                        continue;
                    }
                    return Ok((fd, Bytes::copy_from_slice(&buf[..len])));
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
    async fn a_connection_arrives_with_its_bytes() {
        let (master, worker) = UnixDatagram::pair().unwrap();
        let sender = HandoffSender::new(master);
        let receiver = HandoffReceiver::new(worker, 1024);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        sender.send(&accepted, b"GET / HTTP/1.1\r\n").await.unwrap();
        drop(accepted);
        let (fd, bytes) = receiver.recv().await.unwrap();
        assert_eq!(&bytes[..], b"GET / HTTP/1.1\r\n");
        let std_stream = std::net::TcpStream::from(fd);
        std_stream.set_nonblocking(true).unwrap();
        let mut stream = tokio::net::TcpStream::from_std(std_stream).unwrap();
        stream.write_all(b"hello").await.unwrap();
        let mut buf = [0u8; 5];
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hello");
    }
}
