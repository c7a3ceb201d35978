//! A minimal HTTP/1.1 client connection for Engine.IO long-polling: one
//! request at a time, kept alive, reopened when the server closes it.
//!
//! Written by hand on `httparse`: a polling client needs only GET and POST
//! with small bodies, and a load generator must choose exactly when a TCP
//! connection opens (each new connection is routed by the master again).

use std::sync::Arc;

use crate::tls::Stream as TcpStream;
use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::ClientError;
use crate::net::Connector;

/// The largest response head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// The largest response body accepted (Engine.IO's default maxPayload is
/// 1 MB; a polling GET may carry several packets).
const MAX_BODY: usize = 8 * 1024 * 1024;

/// The most headers a response may have.
const MAX_HEADERS: usize = 64;

/// A response: status and body.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body (de-chunked).
    pub body: Bytes,
}

/// One client HTTP/1.1 connection, request after request.
#[derive(Debug)]
pub struct HttpConnection {
    connector: Arc<Connector>,
    stream: Option<TcpStream>,
    buffer: BytesMut,
    /// TCP connections opened so far (the first one included).
    pub connections_opened: u64,
}

impl HttpConnection {
    /// A connection to `connector`'s server, opened at the first request.
    pub fn new(connector: Arc<Connector>) -> HttpConnection {
        HttpConnection {
            connector,
            stream: None,
            buffer: BytesMut::with_capacity(4096),
            connections_opened: 0,
        }
    }

    /// Sends a request and reads its response, within the connector's
    /// timeout (connect included).
    pub async fn request(
        &mut self,
        method: &str,
        target: &str,
        body: &[u8],
    ) -> Result<Response, ClientError> {
        let limit = self.connector.timeout();
        match tokio::time::timeout(limit, self.exchange(method, target, body)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(error)) => {
                self.stream = None;
                Err(error)
            }
            Err(_) => {
                self.stream = None;
                Err(ClientError::Timeout("an HTTP response"))
            }
        }
    }

    /// The connector this connection opens its TCP connections with.
    pub fn connector(&self) -> Arc<Connector> {
        Arc::clone(&self.connector)
    }

    /// Closes the TCP connection (a later request opens a new one).
    pub fn close(&mut self) {
        self.stream = None;
        self.buffer.clear();
    }

    async fn exchange(
        &mut self,
        method: &str,
        target: &str,
        body: &[u8],
    ) -> Result<Response, ClientError> {
        if self.stream.is_none() {
            self.buffer.clear();
            self.stream = Some(self.connector.connect().await?);
            self.connections_opened += 1;
        }
        let mut request = format!(
            "{method} {target} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.connector.server(),
            body.len()
        )
        .into_bytes();
        if !body.is_empty() {
            request.extend_from_slice(b"Content-Type: text/plain;charset=UTF-8\r\n");
        }
        request.extend_from_slice(b"\r\n");
        request.extend_from_slice(body);
        let stream = self
            .stream
            .as_mut()
            .ok_or(ClientError::Closed("no connection"))?;
        stream.write_all(&request).await?;
        let (response, keep_alive) = read_response(stream, &mut self.buffer).await?;
        if !keep_alive {
            self.close();
        }
        Ok(response)
    }
}

/// Reads one response from `stream` (bytes past it stay in `buffer`), and
/// whether the connection may be kept.
async fn read_response(
    stream: &mut TcpStream,
    buffer: &mut BytesMut,
) -> Result<(Response, bool), ClientError> {
    let (status, head_len, framing, keep_alive) = loop {
        if let Some(head) = parse_head(buffer)? {
            break head;
        }
        if buffer.len() > MAX_HEAD {
            return Err(ClientError::unexpected("a response head over 16 KiB"));
        }
        fill(stream, buffer).await?;
    };
    buffer.advance(head_len);
    let body = match framing {
        Framing::Length(length) => {
            if length > MAX_BODY {
                return Err(ClientError::unexpected("a response body over 8 MiB"));
            }
            while buffer.len() < length {
                fill(stream, buffer).await?;
            }
            buffer.split_to(length).freeze()
        }
        Framing::Chunked => read_chunked(stream, buffer).await?,
        Framing::UntilClose => {
            loop {
                if buffer.len() > MAX_BODY {
                    return Err(ClientError::unexpected("a response body over 8 MiB"));
                }
                match fill(stream, buffer).await {
                    Ok(()) => {}
                    Err(ClientError::Closed(_)) => break,
                    Err(error) => return Err(error),
                }
            }
            buffer.split().freeze()
        }
    };
    let keep_alive = keep_alive && !matches!(framing, Framing::UntilClose);
    Ok((Response { status, body }, keep_alive))
}

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

/// The status, head length, body framing and keep-alive of a complete
/// response head at the start of `buffer`; `None` if incomplete.
fn parse_head(buffer: &[u8]) -> Result<Option<(u16, usize, Framing, bool)>, ClientError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(buffer) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => {
            return Err(ClientError::UnexpectedPacket(format!(
                "malformed HTTP response: {error}"
            )));
        }
    };
    let status = response.code.unwrap_or(0);
    let mut framing = Framing::UntilClose;
    let mut keep_alive = response.version == Some(1);
    for header in response.headers.iter() {
        let value = std::str::from_utf8(header.value).unwrap_or("").trim();
        if header.name.eq_ignore_ascii_case("content-length") {
            let length = value
                .parse()
                .map_err(|_| ClientError::unexpected("a bad Content-Length"))?;
            framing = Framing::Length(length);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding")
            && value.eq_ignore_ascii_case("chunked")
        {
            framing = Framing::Chunked;
        } else if header.name.eq_ignore_ascii_case("connection") {
            keep_alive = !value.eq_ignore_ascii_case("close");
        }
    }
    Ok(Some((status, head_len, framing, keep_alive)))
}

/// Reads a chunked body.
async fn read_chunked(stream: &mut TcpStream, buffer: &mut BytesMut) -> Result<Bytes, ClientError> {
    let mut body = BytesMut::new();
    loop {
        let line_end = loop {
            if let Some(at) = buffer.windows(2).position(|w| w == b"\r\n") {
                break at;
            }
            if buffer.len() > MAX_HEAD {
                return Err(ClientError::unexpected("a chunk size line over 16 KiB"));
            }
            fill(stream, buffer).await?;
        };
        let line = std::str::from_utf8(&buffer[..line_end]).unwrap_or("");
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| ClientError::unexpected("a bad chunk size"))?;
        if body.len() + size > MAX_BODY {
            return Err(ClientError::unexpected("a response body over 8 MiB"));
        }
        buffer.advance(line_end + 2);
        while buffer.len() < size + 2 {
            fill(stream, buffer).await?;
        }
        body.extend_from_slice(&buffer[..size]);
        buffer.advance(size + 2);
        if size == 0 {
            return Ok(body.freeze());
        }
    }
}

/// Reads more bytes into `buffer`; `Closed` at end of stream.
async fn fill(stream: &mut TcpStream, buffer: &mut BytesMut) -> Result<(), ClientError> {
    buffer.reserve(8 * 1024);
    let read = stream.read_buf(buffer).await?;
    if read == 0 {
        return Err(ClientError::Closed("connection closed by the server"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_with_content_length_is_parsed() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let (status, len, framing, keep_alive) = parse_head(head).unwrap().unwrap();
        assert_eq!(
            (status, framing, keep_alive),
            (200, Framing::Length(2), true)
        );
        assert_eq!(&head[len..], b"ok");
    }

    #[test]
    fn partial_head_waits_and_connection_close_is_seen() {
        assert!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Le")
                .unwrap()
                .is_none()
        );
        let head =
            b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n";
        let (status, _, framing, keep_alive) = parse_head(head).unwrap().unwrap();
        assert_eq!(
            (status, framing, keep_alive),
            (400, Framing::Chunked, false)
        );
    }

    #[test]
    fn garbage_is_an_unexpected_packet() {
        assert!(parse_head(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
    }

    #[tokio::test]
    async fn chunked_and_kept_alive_responses_are_read_in_turn() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request).await.unwrap();
            socket
                .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
                .await
                .unwrap();
            let _ = socket.read(&mut request).await.unwrap();
            socket
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .await
                .unwrap();
        });
        let connector = Arc::new(Connector::new(addr, 1, std::time::Duration::from_secs(2)));
        let mut connection = HttpConnection::new(connector);
        let first = connection.request("GET", "/", b"").await.unwrap();
        assert_eq!(&first.body[..], b"abcde");
        let second = connection.request("POST", "/", b"x").await.unwrap();
        assert_eq!(&second.body[..], b"ok");
        assert_eq!(connection.connections_opened, 1);
        server.await.unwrap();
    }
}
