//! The master reads only the request head of a new connection: enough to
//! route it, with a deadline and a size limit.

use std::time::Duration;

use bytes::Bytes;
use iocluster_engineio::EngineQuery;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The most headers a head may have.
const MAX_HEADERS: usize = 100;

/// Why a head could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HeadError {
    /// The client did not send a whole head in time.
    #[error("request head not received within the head timeout")]
    Timeout,
    /// The head is larger than the limit (answered with 431).
    #[error("request head larger than the limit")]
    TooLarge,
    /// Not HTTP/1.x (answered with 400).
    #[error("malformed request head: {0}")]
    Malformed(String),
    /// The client closed the connection first.
    #[error("connection closed before a whole request head")]
    Closed,
    /// Reading failed.
    #[error("read failed: {0}")]
    Io(String),
}

/// What the master needs of a request to route it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestHead {
    /// Every byte read from the connection (the head, and maybe more).
    pub bytes: Bytes,
    /// The method.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The request target as sent (path and query).
    pub target: String,
    /// The `Host` header.
    pub host: Option<String>,
    /// The `sid` query parameter.
    pub sid: Option<String>,
    /// The `X-Forwarded-For` header.
    pub forwarded_for: Option<String>,
    /// The `Origin` header (for the CORS headers of the master's own
    /// error responses).
    pub origin: Option<String>,
    /// Whether it asks for a WebSocket upgrade.
    pub websocket: bool,
}

/// Reads a request head from `stream`: at most `max` bytes within `timeout`.
pub(crate) async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    max: usize,
    timeout: Duration,
) -> Result<RequestHead, HeadError> {
    tokio::time::timeout(timeout, read_until_complete(stream, max))
        .await
        .map_err(|_| HeadError::Timeout)?
}

async fn read_until_complete<S: AsyncRead + Unpin>(
    stream: &mut S,
    max: usize,
) -> Result<RequestHead, HeadError> {
    let mut buf = vec![0u8; max.min(4096)];
    let mut len = 0;
    loop {
        if len == buf.len() {
            if buf.len() >= max {
                return Err(HeadError::TooLarge);
            }
            buf.resize((buf.len() * 2).min(max), 0);
        }
        let n = stream
            .read(&mut buf[len..])
            .await
            .map_err(|e| HeadError::Io(e.to_string()))?;
        if n == 0 {
            return Err(HeadError::Closed);
        }
        len += n;
        if let Some(head) = parse(&buf[..len])? {
            buf.truncate(len);
            return Ok(RequestHead {
                bytes: Bytes::from(buf),
                ..head
            });
        }
    }
}

/// Parses a complete head; none while it is partial.
pub(crate) fn parse(bytes: &[u8]) -> Result<Option<RequestHead>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(bytes) {
        Ok(httparse::Status::Partial) => Ok(None),
        Ok(httparse::Status::Complete(_)) => {
            let target = request.path.unwrap_or("/");
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            let header = |name: &str| {
                request
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name))
                    .and_then(|h| std::str::from_utf8(h.value).ok())
            };
            Ok(Some(RequestHead {
                bytes: Bytes::new(),
                method: request.method.unwrap_or("").to_owned(),
                path: path.to_owned(),
                target: target.to_owned(),
                host: header("host").map(str::to_owned),
                sid: EngineQuery::parse(query).sid.map(str::to_owned),
                forwarded_for: header("x-forwarded-for").map(str::to_owned),
                origin: header("origin").map(str::to_owned),
                websocket: header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")),
            }))
        }
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooLarge),
        Err(error) => Err(HeadError::Malformed(error.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sid_path_and_upgrade() {
        let head = parse(
            b"GET /socket.io/?EIO=4&transport=websocket&sid=abc HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(head.method, "GET");
        assert_eq!(head.path, "/socket.io/");
        assert_eq!(head.sid.as_deref(), Some("abc"));
        assert_eq!(head.forwarded_for.as_deref(), Some("10.0.0.1"));
        assert!(head.websocket);
    }

    #[test]
    fn partial_heads_wait_and_garbage_is_malformed() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\nHost:"), Ok(None));
        assert!(matches!(
            parse(b"\x00\x01garbage\r\n\r\n"),
            Err(HeadError::Malformed(_))
        ));
    }

    #[tokio::test]
    async fn reads_a_head_split_in_pieces_and_keeps_the_extra_bytes() {
        let (mut client, mut server) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for piece in [
                &b"POST /x?sid=s HTTP/1.1\r\nContent-"[..],
                b"Length: 2\r\n\r",
                b"\nok",
            ] {
                client.write_all(piece).await.unwrap();
                tokio::task::yield_now().await;
            }
            client
        });
        let head = read_head(&mut server, 1024, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(head.sid.as_deref(), Some("s"));
        assert!(head.bytes.starts_with(b"POST /x?sid=s HTTP/1.1\r\n"));
        drop(writer.await);
    }

    #[tokio::test]
    async fn oversized_heads_are_refused() {
        let (mut client, mut server) = tokio::io::duplex(1 << 16);
        use tokio::io::AsyncWriteExt;
        let mut head = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
        head.extend(std::iter::repeat_n(b'a', 60_000));
        client.write_all(&head).await.unwrap();
        let error = read_head(&mut server, 16 * 1024, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(error, HeadError::TooLarge);
    }

    #[tokio::test]
    async fn silent_clients_time_out() {
        let (_client, mut server) = tokio::io::duplex(64);
        let error = read_head(&mut server, 1024, Duration::from_millis(20))
            .await
            .unwrap_err();
        assert_eq!(error, HeadError::Timeout);
    }
}
