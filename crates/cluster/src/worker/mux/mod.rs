//! Multiplexed peer links: a worker's requests for the sessions of a
//! worker of another node travel over one authenticated connection to
//! that worker, many at a time, as frames ([`crate::peer::frame`]); the
//! owner serves each with its app directly (no HTTP parse or encode on
//! either side of the link), and under load one write carries many
//! requests or answers ([`writer`]).
//!
//! The link starts like any peer connection (the mutual HMAC handshake,
//! then a request the owner's master routes by its sid), with a request
//! asking for the link ([`preface`]); the owner's worker answers
//! `101 Switching Protocols` and frames follow both ways.
//!
//! Polling requests with a body of known length up to
//! [`crate::peer::frame::REQUEST_BODY_MAX`] travel as one frame each way;
//! WebSocket upgrades and larger or streamed bodies go through a
//! [`tunnel`] in the link: a byte stream that carries HTTP/1.1 as a
//! connection would, with its own window.

pub(crate) mod client;
pub(crate) mod server;
pub(crate) mod stats;
pub(crate) mod tunnel;
mod writer;

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpStream;

use crate::peer::frame::{self, Frame, FrameError};

/// How long a link is silent before TCP keep-alive probes it (both ends:
/// a peer that vanished without closing is found by its silence).
const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
/// Read this much at a time.
const READ_CHUNK: usize = 64 * 1024;

/// Turns TCP keep-alive on for a link's connection.
fn keep_alive(stream: &TcpStream) {
    let probes = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_IDLE);
    let _ = socket2::SockRef::from(stream).set_tcp_keepalive(&probes);
}

/// Reads a link's frames (`buf`: what was read already) and gives each to
/// `take` until the other side closes (`Ok`), a frame is malformed or
/// `take` refuses one (`Err`).
async fn read_frames<R, E>(
    read: &mut R,
    mut buf: BytesMut,
    mut take: impl FnMut(Frame) -> Result<(), E>,
) -> Result<(), E>
where
    R: AsyncRead + Unpin,
    E: From<FrameError>,
{
    loop {
        while let Some(frame) = frame::decode(&mut buf)? {
            take(frame)?;
        }
        buf.reserve(READ_CHUNK);
        if !matches!(read.read_buf(&mut buf).await, Ok(n) if n > 0) {
            return Ok(());
        }
    }
}

/// The query parameter that asks for a link; its value is the version of
/// the frames (2: the client's address as bytes). An owner of another
/// version does not take the request for a link and answers it as an
/// ordinary one, which the forwarder does not take for a link either:
/// during a rolling deploy, requests between nodes of two versions get
/// `Session ID unknown` (their clients reconnect), never a frame read
/// the wrong way.
const LINK_QUERY: &str = "iocluster-link=2";

/// The request that asks the owner of `sid` for a link.
fn preface(sid: &str) -> String {
    format!("GET /?sid={sid}&{LINK_QUERY} HTTP/1.1\r\nhost: iocluster-peer\r\n\r\n")
}

/// The owner's answer to it.
const ACCEPTED: &[u8] =
    b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: iocluster-link\r\n\r\n";

/// When `bytes` (what the master read from a peer connection) start with
/// a request for a link: the length of that request's head (what follows
/// is frames).
pub(crate) fn link_request(bytes: &[u8]) -> Option<usize> {
    let mut headers = [httparse::EMPTY_HEADER; 8];
    let mut request = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(length) = request.parse(bytes).ok()? else {
        return None;
    };
    let query = request.path?.split_once('?')?.1;
    query
        .split('&')
        .any(|pair| pair == LINK_QUERY)
        .then_some(length)
}

#[cfg(test)]
mod tests;
