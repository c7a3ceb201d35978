//! The owner's answer: its head parsed with httparse (bounded in size and
//! headers), its body delimited by length, chunked framing or close, and
//! passed on as it arrives — taken whole when it came with the head.

use std::io;
use std::time::Duration;

use axum::body::Body;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode};
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::chunked::{Chunked, decode_chunked};
use super::{Conn, ExchangeError, Framing, within};

/// The largest answer head read.
pub(crate) const MAX_ANSWER_HEAD: usize = 64 * 1024;
/// The most headers an answer may have.
pub(crate) const MAX_ANSWER_HEADERS: usize = 64;
/// How much is read at a time.
const READ_CHUNK: usize = 16 * 1024;

/// The head of an answer, and how its body is delimited.
#[derive(Debug)]
pub(crate) struct AnswerHead {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) framing: Framing,
}

/// Reads the head of the answer to a `method` request, each wait at most
/// `deadline`.
pub(crate) async fn read_answer_head<S: AsyncRead + Unpin>(
    conn: &mut Conn<S>,
    method: &Method,
    deadline: Duration,
) -> Result<AnswerHead, ExchangeError> {
    loop {
        if let Some(head) = parse_answer_head(&mut conn.buf, method)? {
            return Ok(head);
        }
        if conn.buf.len() >= MAX_ANSWER_HEAD {
            return Err(ExchangeError::Malformed("head too large"));
        }
        conn.buf.reserve(READ_CHUNK);
        let read = within(deadline, conn.stream.read_buf(&mut conn.buf)).await?;
        match read {
            Ok(0) if conn.buf.is_empty() => return Err(ExchangeError::Closed),
            Ok(0) => return Err(ExchangeError::Malformed("truncated head")),
            Ok(_) => {}
            // The other side reset the stream before answering.
            Err(error) if conn.buf.is_empty() && error.kind() == io::ErrorKind::ConnectionReset => {
                return Err(ExchangeError::Closed);
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// Parses an answer head at the start of `buf` and consumes it; none
/// while it is incomplete.
pub(crate) fn parse_answer_head(
    buf: &mut BytesMut,
    method: &Method,
) -> Result<Option<AnswerHead>, ExchangeError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_ANSWER_HEADERS];
    let mut answer = httparse::Response::new(&mut slots);
    let length = match answer.parse(buf) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ExchangeError::Malformed("too many headers"));
        }
        Err(_) => return Err(ExchangeError::Malformed("not an HTTP/1.1 answer")),
    };
    let status = answer
        .code
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or(ExchangeError::Malformed("bad status"))?;
    let mut headers = HeaderMap::with_capacity(answer.headers.len());
    let mut framing = Framing::UntilClose;
    for raw in answer.headers.iter() {
        let name = HeaderName::from_bytes(raw.name.as_bytes())
            .map_err(|_| ExchangeError::Malformed("bad header name"))?;
        let value = HeaderValue::from_bytes(raw.value)
            .map_err(|_| ExchangeError::Malformed("bad header value"))?;
        if name == header::TRANSFER_ENCODING {
            if value
                .to_str()
                .is_ok_and(|v| v.to_ascii_lowercase().trim_end().ends_with("chunked"))
            {
                framing = Framing::Chunked;
            } else {
                return Err(ExchangeError::Malformed("unknown transfer coding"));
            }
            continue;
        }
        if name == header::CONTENT_LENGTH {
            let length = std::str::from_utf8(raw.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or(ExchangeError::Malformed("bad content-length"))?;
            match framing {
                Framing::Length(before) if before != length => {
                    return Err(ExchangeError::Malformed("conflicting content-length"));
                }
                Framing::Chunked => {}
                _ => framing = Framing::Length(length),
            }
        }
        headers.append(name, value);
    }
    if framing == Framing::Chunked {
        // A chunked answer's length is its chunks'.
        headers.remove(header::CONTENT_LENGTH);
    }
    if *method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        framing = Framing::Length(0);
    }
    let _ = buf.split_to(length);
    Ok(Some(AnswerHead {
        status,
        headers,
        framing,
    }))
}

/// Reads an answer's body from a connection, piece by piece; lets the
/// connection go once the body is over (a tunnel then ends, so the owner
/// stops serving it).
pub(crate) struct AnswerBody<S> {
    conn: Option<Conn<S>>,
    reading: Reading,
    deadline: Duration,
}

#[derive(Debug, Clone, Copy)]
enum Reading {
    Length(u64),
    Chunked(Chunked),
    UntilClose,
}

impl<S: AsyncRead + Unpin + Send + 'static> AnswerBody<S> {
    /// The body of an answer framed by `framing`, on `conn`.
    pub(crate) fn new(conn: Conn<S>, framing: Framing, deadline: Duration) -> AnswerBody<S> {
        let reading = match framing {
            Framing::Length(length) => Reading::Length(length),
            Framing::Chunked => Reading::Chunked(Chunked::Size),
            Framing::UntilClose => Reading::UntilClose,
        };
        AnswerBody {
            conn: Some(conn),
            reading,
            deadline,
        }
    }

    /// The whole body, when it is already read (the usual case: a short
    /// answer comes in one piece with its head); the connection is let
    /// go at once.
    pub(crate) fn take_whole(&mut self) -> Option<Bytes> {
        let Reading::Length(length) = self.reading else {
            return None;
        };
        let conn = self.conn.as_mut()?;
        let length = usize::try_from(length).ok()?;
        if conn.buf.len() < length {
            return None;
        }
        let body = conn.buf.split_to(length).freeze();
        self.finish();
        Some(body)
    }

    fn finish(&mut self) {
        self.reading = Reading::Length(0);
        self.conn = None;
    }

    /// The next piece of the body; none at its end.
    pub(crate) async fn next(&mut self) -> Result<Option<Bytes>, ExchangeError> {
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return Ok(None);
            };
            match &mut self.reading {
                Reading::Length(0) => {
                    self.finish();
                    return Ok(None);
                }
                Reading::Length(left) => {
                    if !conn.buf.is_empty() {
                        let take = usize::try_from(*left)
                            .unwrap_or(usize::MAX)
                            .min(conn.buf.len());
                        let data = conn.buf.split_to(take).freeze();
                        *left -= take as u64;
                        if *left == 0 {
                            self.finish();
                        }
                        return Ok(Some(data));
                    }
                }
                Reading::Chunked(state) => {
                    let data = decode_chunked(state, &mut conn.buf)?;
                    if *state == Chunked::Done {
                        self.finish();
                        return Ok(data.filter(|d| !d.is_empty()));
                    }
                    if data.is_some() {
                        return Ok(data);
                    }
                }
                Reading::UntilClose => {
                    if !conn.buf.is_empty() {
                        return Ok(Some(conn.buf.split().freeze()));
                    }
                }
            }
            conn.buf.reserve(READ_CHUNK);
            let read = within(self.deadline, conn.stream.read_buf(&mut conn.buf)).await??;
            if read == 0 {
                if matches!(self.reading, Reading::UntilClose) {
                    self.conn = None;
                    return Ok(None);
                }
                self.conn = None;
                return Err(ExchangeError::Malformed("answer body cut short"));
            }
        }
    }

    /// The body as an axum body, read as the client takes it.
    pub(crate) fn into_body(mut self) -> Body {
        if let Some(whole) = self.take_whole() {
            return Body::from(whole);
        }
        let pieces = futures_util::stream::unfold(Some(self), |body| async move {
            let mut body = body?;
            match body.next().await {
                Ok(Some(data)) => Some((Ok(data), Some(body))),
                Ok(None) => None,
                Err(error) => Some((Err(io::Error::other(error.to_string())), None)),
            }
        });
        Body::from_stream(pieces)
    }
}

#[cfg(test)]
mod tests {

    use tokio::io::AsyncWriteExt;

    use super::*;

    const LONG: Duration = Duration::from_secs(5);

    fn buf(bytes: &[u8]) -> BytesMut {
        BytesMut::from(bytes)
    }

    #[test]
    fn parses_an_answer_head_and_leaves_the_body() {
        let mut input =
            buf(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok");
        let head = parse_answer_head(&mut input, &Method::GET)
            .unwrap()
            .unwrap();
        assert_eq!(head.status, StatusCode::OK);
        assert_eq!(head.framing, Framing::Length(2));
        assert_eq!(head.headers[header::CONTENT_TYPE], "text/plain");
        assert_eq!(&input[..], b"ok");
    }

    #[test]
    fn an_incomplete_head_waits_for_more() {
        let mut input = buf(b"HTTP/1.1 200 OK\r\nContent-Len");
        assert!(
            parse_answer_head(&mut input, &Method::GET)
                .unwrap()
                .is_none()
        );
        assert_eq!(input.len(), 28, "nothing consumed");
    }

    #[test]
    fn framing_follows_the_answer() {
        let framing = |raw: &[u8], method: Method| {
            parse_answer_head(&mut buf(raw), &method)
                .unwrap()
                .unwrap()
                .framing
        };
        assert_eq!(
            framing(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
                Method::GET
            ),
            Framing::Chunked
        );
        assert_eq!(
            framing(b"HTTP/1.1 200 OK\r\n\r\n", Method::GET),
            Framing::UntilClose
        );
        assert_eq!(
            framing(
                b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n",
                Method::HEAD
            ),
            Framing::Length(0)
        );
        assert_eq!(
            framing(b"HTTP/1.1 204 No Content\r\n\r\n", Method::GET),
            Framing::Length(0)
        );
        assert_eq!(
            framing(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
                Method::GET
            ),
            Framing::Length(0)
        );
    }

    #[test]
    fn malformed_answers_are_errors() {
        let cases: &[&[u8]] = &[
            b"SMTP 220 hello\r\n\r\n",
            b"HTTP/1.1 2x0 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
        ];
        for raw in cases {
            assert!(
                matches!(
                    parse_answer_head(&mut buf(raw), &Method::GET),
                    Err(ExchangeError::Malformed(_))
                ),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=MAX_ANSWER_HEADERS {
            many.extend_from_slice(format!("x-{i}: 1\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert!(matches!(
            parse_answer_head(&mut buf(&many), &Method::GET),
            Err(ExchangeError::Malformed("too many headers"))
        ));
    }

    #[tokio::test]
    async fn an_answer_head_needs_a_whole_head_in_time() {
        // Closed before a byte: the other side went away.
        let (client, server) = tokio::io::duplex(1024);
        drop(server);
        let mut conn = Conn::new(client);
        assert!(matches!(
            read_answer_head(&mut conn, &Method::GET, LONG).await,
            Err(ExchangeError::Closed)
        ));
        // Closed mid-head.
        let (client, mut server) = tokio::io::duplex(1024);
        server.write_all(b"HTTP/1.1 200 OK\r\nCont").await.unwrap();
        drop(server);
        let mut conn = Conn::new(client);
        assert!(matches!(
            read_answer_head(&mut conn, &Method::GET, LONG).await,
            Err(ExchangeError::Malformed("truncated head"))
        ));
        // Silent.
        let (client, _server) = tokio::io::duplex(1024);
        let mut conn = Conn::new(client);
        assert!(matches!(
            read_answer_head(&mut conn, &Method::GET, Duration::from_millis(50)).await,
            Err(ExchangeError::Timeout)
        ));
        // Endless.
        let (client, mut server) = tokio::io::duplex(1 << 20);
        let endless = tokio::spawn(async move {
            let _ = server.write_all(b"HTTP/1.1 200 OK\r\n").await;
            let line = [b'x'; 1024];
            while server.write_all(&line).await.is_ok() {}
        });
        let mut conn = Conn::new(client);
        assert!(matches!(
            read_answer_head(&mut conn, &Method::GET, LONG).await,
            Err(ExchangeError::Malformed("head too large"))
        ));
        assert!(conn.buf.len() < MAX_ANSWER_HEAD + READ_CHUNK + 1024);
        drop(conn);
        endless.await.unwrap();
    }

    /// Whether the other end of `server`'s connection let it go.
    async fn let_go(server: &mut tokio::io::DuplexStream) -> bool {
        matches!(server.read(&mut [0u8; 1]).await, Ok(0))
    }

    #[tokio::test]
    async fn a_body_that_came_with_its_head_is_taken_whole() {
        let (client, mut server) = tokio::io::duplex(64);
        let mut conn = Conn::new(client);
        conn.buf.extend_from_slice(b"hello+next");
        let mut body = AnswerBody::new(conn, Framing::Length(5), LONG);
        assert_eq!(body.take_whole().unwrap(), "hello");
        assert!(let_go(&mut server).await, "the connection goes at once");
    }

    #[tokio::test]
    async fn a_long_body_is_passed_on_as_it_arrives_and_frees_its_connection() {
        let (client, mut server) = tokio::io::duplex(64);
        let mut body = AnswerBody::new(Conn::new(client), Framing::Length(100_000), LONG);
        assert!(body.take_whole().is_none());
        let writer = tokio::spawn(async move {
            for _ in 0..100 {
                server.write_all(&[7u8; 1000]).await.unwrap();
            }
            server
        });
        let mut total = 0;
        while let Some(piece) = body.next().await.unwrap() {
            assert!(piece.iter().all(|b| *b == 7));
            total += piece.len();
        }
        assert_eq!(total, 100_000);
        assert!(let_go(&mut writer.await.unwrap()).await);
    }

    #[tokio::test]
    async fn a_body_cut_short_is_an_error() {
        let (client, mut server) = tokio::io::duplex(64);
        let mut body = AnswerBody::new(Conn::new(client), Framing::Length(10), LONG);
        server.write_all(b"abc").await.unwrap();
        drop(server);
        assert_eq!(body.next().await.unwrap().unwrap(), "abc");
        assert!(matches!(
            body.next().await,
            Err(ExchangeError::Malformed(_))
        ));
    }

    #[tokio::test]
    async fn chunked_and_close_delimited_bodies() {
        let (client, mut server) = tokio::io::duplex(64);
        let mut body = AnswerBody::new(Conn::new(client), Framing::Chunked, LONG);
        server
            .write_all(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        while let Some(piece) = body.next().await.unwrap() {
            out.extend_from_slice(&piece);
        }
        assert_eq!(out, b"abcde");
        assert!(let_go(&mut server).await);

        let (client, mut server) = tokio::io::duplex(64);
        let mut body = AnswerBody::new(Conn::new(client), Framing::UntilClose, LONG);
        server.write_all(b"all of it").await.unwrap();
        drop(server);
        let mut out = Vec::new();
        while let Some(piece) = body.next().await.unwrap() {
            out.extend_from_slice(&piece);
        }
        assert_eq!(out, b"all of it");
    }
}
