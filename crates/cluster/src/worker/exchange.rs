//! One forwarded request over a byte stream, written and answered by hand:
//! the head and the start of the body go out in one write, the answer's
//! head is parsed with httparse and its body delimited by its length (or
//! chunked framing, or the end of the stream). No client task, no channel
//! between tasks, no second parse into `http` types on the way out: the
//! forwarding worker's costs per request are one write, one read and a
//! head parse (hyper's pooled client, which this replaces, cost more than
//! twice that; DESIGN.md "Any node serves any session").
//!
//! Every read is bounded: the answer's head by [`MAX_ANSWER_HEAD`] bytes
//! and [`MAX_ANSWER_HEADERS`] headers, each wait by the caller's deadline;
//! a body is passed on as it arrives, never gathered whole unless it came
//! with its head.

use std::io;
use std::time::Duration;

use axum::body::Body;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode, request};
use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest answer head read.
pub(crate) const MAX_ANSWER_HEAD: usize = 64 * 1024;
/// The most headers an answer may have.
pub(crate) const MAX_ANSWER_HEADERS: usize = 64;
/// How much of a request's body is gathered with its head for the first
/// write (and kept, so that the request can be sent again on a fresh
/// connection when a pooled one turns out closed).
const GATHER: usize = 64 * 1024;
/// How much is read at a time.
const READ_CHUNK: usize = 16 * 1024;

/// Why a forwarded request got no answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExchangeError {
    /// The connection closed before a byte of the answer: on a pooled
    /// connection, the other side had closed it while it was idle.
    #[error("connection closed before an answer")]
    Closed,
    /// Reading or writing failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The answer is not HTTP/1.1 as we speak it.
    #[error("malformed answer: {0}")]
    Malformed(&'static str),
    /// The client's body could not be read.
    #[error("request body: {0}")]
    RequestBody(String),
    /// No progress within the deadline.
    #[error("no answer in time")]
    Timeout,
}

/// A connection to the owner of a session, with what was read from it
/// and not used yet.
#[derive(Debug)]
pub(crate) struct Conn<S> {
    pub(crate) stream: S,
    pub(crate) buf: BytesMut,
}

impl<S> Conn<S> {
    pub(crate) fn new(stream: S) -> Conn<S> {
        Conn {
            stream,
            buf: BytesMut::new(),
        }
    }
}

/// How a body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// Exactly this many bytes (none: `Length(0)`).
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Until the connection closes (answers only).
    UntilClose,
}

/// A request ready to go: its head and as much of its body as came at
/// once, and the rest of the body, if any.
pub(crate) struct Outgoing {
    start: Bytes,
    rest: Option<(Body, Framing)>,
}

impl Outgoing {
    /// Encodes the head of `parts` (hop-by-hop headers dropped, `extra`
    /// added) and gathers the start of `body`, for at most `deadline`.
    pub(crate) async fn prepare(
        parts: &request::Parts,
        mut body: Body,
        upgrade: bool,
        extra: Option<(&'static str, &str)>,
        deadline: Duration,
    ) -> Result<Outgoing, ExchangeError> {
        let framing = if upgrade {
            Framing::Length(0)
        } else {
            match http_body::Body::size_hint(&body).exact() {
                Some(length) => Framing::Length(length),
                None => Framing::Chunked,
            }
        };
        let mut start = request_head(parts, framing, upgrade, extra);
        if framing == Framing::Length(0) {
            return Ok(Outgoing {
                start: start.freeze(),
                rest: None,
            });
        }
        let gathered = tokio::time::timeout(deadline, async {
            while start.len() < GATHER && !http_body::Body::is_end_stream(&body) {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            put_data(&mut start, &data, framing);
                        }
                    }
                    Some(Err(error)) => return Err(ExchangeError::RequestBody(error.to_string())),
                    None => break,
                }
            }
            Ok(())
        })
        .await;
        match gathered {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(error),
            Err(_) => return Err(ExchangeError::Timeout),
        }
        if http_body::Body::is_end_stream(&body) {
            if framing == Framing::Chunked {
                start.put_slice(b"0\r\n\r\n");
            }
            return Ok(Outgoing {
                start: start.freeze(),
                rest: None,
            });
        }
        Ok(Outgoing {
            start: start.freeze(),
            rest: Some((body, framing)),
        })
    }

    /// Whether the request is all in memory, so it can be sent again.
    pub(crate) fn replayable(&self) -> bool {
        self.rest.is_none()
    }

    /// Writes the request to `stream`; the rest of the body as it comes,
    /// each wait at most `deadline`.
    pub(crate) async fn write_to<S: AsyncWrite + Unpin>(
        &mut self,
        stream: &mut S,
        deadline: Duration,
    ) -> Result<(), ExchangeError> {
        within(deadline, stream.write_all(&self.start)).await??;
        let Some((body, framing)) = self.rest.as_mut() else {
            return Ok(());
        };
        let framing = *framing;
        let mut out = BytesMut::new();
        loop {
            let frame = match within(deadline, body.frame()).await? {
                Some(Ok(frame)) => frame,
                Some(Err(error)) => return Err(ExchangeError::RequestBody(error.to_string())),
                None => break,
            };
            if let Ok(data) = frame.into_data() {
                out.clear();
                put_data(&mut out, &data, framing);
                within(deadline, stream.write_all(&out)).await??;
            }
        }
        if framing == Framing::Chunked {
            within(deadline, stream.write_all(b"0\r\n\r\n")).await??;
        }
        self.rest = None;
        Ok(())
    }
}

/// `future`, or [`ExchangeError::Timeout`] after `deadline`.
async fn within<F: Future>(deadline: Duration, future: F) -> Result<F::Output, ExchangeError> {
    tokio::time::timeout(deadline, future)
        .await
        .map_err(|_| ExchangeError::Timeout)
}

fn put_data(out: &mut BytesMut, data: &[u8], framing: Framing) {
    if data.is_empty() {
        return;
    }
    if framing == Framing::Chunked {
        out.put_slice(format!("{:x}\r\n", data.len()).as_bytes());
        out.put_slice(data);
        out.put_slice(b"\r\n");
    } else {
        out.put_slice(data);
    }
}

/// Headers that belong to one connection, not to the request.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "content-length"
    )
}

/// The request line and headers of a forwarded request.
fn request_head(
    parts: &request::Parts,
    framing: Framing,
    upgrade: bool,
    extra: Option<(&'static str, &str)>,
) -> BytesMut {
    let mut head = BytesMut::with_capacity(512);
    head.put_slice(parts.method.as_str().as_bytes());
    head.put_u8(b' ');
    head.put_slice(
        parts
            .uri
            .path_and_query()
            .map_or("/", |target| target.as_str())
            .as_bytes(),
    );
    head.put_slice(b" HTTP/1.1\r\n");
    for (name, value) in &parts.headers {
        if hop_by_hop(name) {
            continue;
        }
        put_header(&mut head, name.as_str(), value.as_bytes());
    }
    if upgrade {
        head.put_slice(b"connection: upgrade\r\n");
        if let Some(protocol) = parts.headers.get(header::UPGRADE) {
            put_header(&mut head, "upgrade", protocol.as_bytes());
        }
    }
    match framing {
        Framing::Length(0) if matches!(parts.method, Method::GET | Method::HEAD) => {}
        Framing::Length(length) => {
            put_header(&mut head, "content-length", length.to_string().as_bytes())
        }
        Framing::Chunked => head.put_slice(b"transfer-encoding: chunked\r\n"),
        Framing::UntilClose => {}
    }
    if let Some((name, value)) = extra {
        put_header(&mut head, name, value.as_bytes());
    }
    head.put_slice(b"\r\n");
    head
}

fn put_header(head: &mut BytesMut, name: &str, value: &[u8]) {
    head.put_slice(name.as_bytes());
    head.put_slice(b": ");
    head.put_slice(value);
    head.put_slice(b"\r\n");
}

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
            // A pooled connection the other side reset while idle.
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

/// Where a chunked body's decoding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chunked {
    /// Before a chunk's size line.
    Size,
    /// Inside a chunk: this many bytes left.
    Data(u64),
    /// After a chunk's data: its CRLF.
    DataEnd,
    /// After the last chunk: trailers until an empty line.
    Trailers,
    /// The body is over.
    Done,
}

/// The next piece of a chunked body from `buf`: data, or none when more
/// bytes are needed or the body is over (`state` says which).
pub(crate) fn decode_chunked(
    state: &mut Chunked,
    buf: &mut BytesMut,
) -> Result<Option<Bytes>, ExchangeError> {
    loop {
        match *state {
            Chunked::Size => match httparse::parse_chunk_size(buf) {
                Ok(httparse::Status::Complete((used, 0))) => {
                    let _ = buf.split_to(used);
                    *state = Chunked::Trailers;
                }
                Ok(httparse::Status::Complete((used, size))) => {
                    let _ = buf.split_to(used);
                    *state = Chunked::Data(size);
                }
                Ok(httparse::Status::Partial) if buf.len() < 1024 => return Ok(None),
                Ok(httparse::Status::Partial) | Err(_) => {
                    return Err(ExchangeError::Malformed("bad chunk size"));
                }
            },
            Chunked::Data(left) => {
                if buf.is_empty() {
                    return Ok(None);
                }
                let take = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                let data = buf.split_to(take).freeze();
                let left = left - take as u64;
                *state = if left == 0 {
                    Chunked::DataEnd
                } else {
                    Chunked::Data(left)
                };
                return Ok(Some(data));
            }
            Chunked::DataEnd => {
                if buf.len() < 2 {
                    return Ok(None);
                }
                if &buf[..2] != b"\r\n" {
                    return Err(ExchangeError::Malformed("chunk not followed by CRLF"));
                }
                let _ = buf.split_to(2);
                *state = Chunked::Size;
            }
            Chunked::Trailers => {
                if buf.starts_with(b"\r\n") {
                    let _ = buf.split_to(2);
                    *state = Chunked::Done;
                    continue;
                }
                match buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    Some(end) => {
                        let _ = buf.split_to(end + 4);
                        *state = Chunked::Done;
                    }
                    None if buf.len() < MAX_ANSWER_HEAD => return Ok(None),
                    None => return Err(ExchangeError::Malformed("trailers too large")),
                }
            }
            Chunked::Done => return Ok(None),
        }
    }
}

/// What becomes of a connection once an answer's body is read: back to
/// its pool, or closed.
pub(crate) type Release<S> = Box<dyn FnOnce(Conn<S>) + Send>;

/// Reads an answer's body from a connection, piece by piece; hands the
/// connection to `release` once the body is over (when it can carry
/// another request).
pub(crate) struct AnswerBody<S> {
    conn: Option<Conn<S>>,
    reading: Reading,
    deadline: Duration,
    release: Option<Release<S>>,
}

#[derive(Debug, Clone, Copy)]
enum Reading {
    Length(u64),
    Chunked(Chunked),
    UntilClose,
}

impl<S: AsyncRead + Unpin + Send + 'static> AnswerBody<S> {
    /// The body of an answer framed by `framing`, on `conn`.
    pub(crate) fn new(
        conn: Conn<S>,
        framing: Framing,
        deadline: Duration,
        release: Release<S>,
    ) -> AnswerBody<S> {
        let reading = match framing {
            Framing::Length(length) => Reading::Length(length),
            Framing::Chunked => Reading::Chunked(Chunked::Size),
            Framing::UntilClose => Reading::UntilClose,
        };
        AnswerBody {
            conn: Some(conn),
            reading,
            deadline,
            release: Some(release),
        }
    }

    /// The whole body, when it is already read (the usual case: a short
    /// answer comes in one piece with its head); the connection is
    /// released at once.
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
        if let (Some(conn), Some(release)) = (self.conn.take(), self.release.take()) {
            release(conn);
        }
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
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use proptest::prelude::*;
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

    /// Feeds `encoded` to the chunked decoder in pieces cut at `cuts`.
    fn decode_in_pieces(
        encoded: &[u8],
        cuts: &[usize],
    ) -> Result<(Vec<u8>, Chunked), ExchangeError> {
        let mut state = Chunked::Size;
        let mut input = BytesMut::new();
        let mut out = Vec::new();
        let mut at = 0;
        let mut ends: Vec<usize> = cuts.iter().map(|c| c % (encoded.len() + 1)).collect();
        ends.push(encoded.len());
        ends.sort_unstable();
        for end in ends {
            input.extend_from_slice(&encoded[at..end.max(at)]);
            at = end.max(at);
            while let Some(data) = decode_chunked(&mut state, &mut input)? {
                out.extend_from_slice(&data);
            }
        }
        Ok((out, state))
    }

    fn chunked(pieces: &[Vec<u8>]) -> Vec<u8> {
        let mut encoded = Vec::new();
        for piece in pieces.iter().filter(|p| !p.is_empty()) {
            encoded.extend_from_slice(format!("{:X};ext=1\r\n", piece.len()).as_bytes());
            encoded.extend_from_slice(piece);
            encoded.extend_from_slice(b"\r\n");
        }
        encoded.extend_from_slice(b"0\r\nx-trailer: 1\r\n\r\n");
        encoded
    }

    proptest! {
        #[test]
        fn chunked_bodies_decode_however_they_are_cut(
            pieces in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..6),
            cuts in proptest::collection::vec(any::<usize>(), 0..8),
        ) {
            let encoded = chunked(&pieces);
            let (out, state) = decode_in_pieces(&encoded, &cuts).unwrap();
            prop_assert_eq!(state, Chunked::Done);
            prop_assert_eq!(out, pieces.concat());
        }

        #[test]
        fn the_chunked_decoder_never_panics(input in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_in_pieces(&input, &[3, 17, 40]);
        }
    }

    #[test]
    fn bad_chunks_are_errors() {
        for raw in [&b"zz\r\n"[..], b"3\r\nabcX\r\n", &[b'f'; 2000][..]] {
            assert!(
                matches!(decode_in_pieces(raw, &[]), Err(ExchangeError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[tokio::test]
    async fn an_answer_head_needs_a_whole_head_in_time() {
        // Closed before a byte: the pooled connection was dead.
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

    fn released() -> (Arc<AtomicBool>, Release<tokio::io::DuplexStream>) {
        let flag = Arc::new(AtomicBool::new(false));
        let set = Arc::clone(&flag);
        (flag, Box::new(move |_| set.store(true, Ordering::SeqCst)))
    }

    #[tokio::test]
    async fn a_body_that_came_with_its_head_is_taken_whole() {
        let (client, _server) = tokio::io::duplex(64);
        let mut conn = Conn::new(client);
        conn.buf.extend_from_slice(b"hello+next");
        let (done, release) = released();
        let mut body = AnswerBody::new(conn, Framing::Length(5), LONG, release);
        assert_eq!(body.take_whole().unwrap(), "hello");
        assert!(
            done.load(Ordering::SeqCst),
            "the connection goes back at once"
        );
    }

    #[tokio::test]
    async fn a_long_body_is_passed_on_as_it_arrives_and_frees_its_connection() {
        let (client, mut server) = tokio::io::duplex(64);
        let (done, release) = released();
        let mut body = AnswerBody::new(Conn::new(client), Framing::Length(100_000), LONG, release);
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
        assert!(done.load(Ordering::SeqCst));
        drop(writer.await.unwrap());
    }

    #[tokio::test]
    async fn a_body_cut_short_is_an_error_and_the_connection_is_not_reused() {
        let (client, mut server) = tokio::io::duplex(64);
        let (done, release) = released();
        let mut body = AnswerBody::new(Conn::new(client), Framing::Length(10), LONG, release);
        server.write_all(b"abc").await.unwrap();
        drop(server);
        assert_eq!(body.next().await.unwrap().unwrap(), "abc");
        assert!(matches!(
            body.next().await,
            Err(ExchangeError::Malformed(_))
        ));
        assert!(!done.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn chunked_and_close_delimited_bodies() {
        let (client, mut server) = tokio::io::duplex(64);
        let (done, release) = released();
        let mut body = AnswerBody::new(Conn::new(client), Framing::Chunked, LONG, release);
        server
            .write_all(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        while let Some(piece) = body.next().await.unwrap() {
            out.extend_from_slice(&piece);
        }
        assert_eq!(out, b"abcde");
        assert!(done.load(Ordering::SeqCst));

        let (client, mut server) = tokio::io::duplex(64);
        let (done, release) = released();
        let mut body = AnswerBody::new(Conn::new(client), Framing::UntilClose, LONG, release);
        server.write_all(b"all of it").await.unwrap();
        drop(server);
        let mut out = Vec::new();
        while let Some(piece) = body.next().await.unwrap() {
            out.extend_from_slice(&piece);
        }
        assert_eq!(out, b"all of it");
        assert!(
            !done.load(Ordering::SeqCst),
            "a closed connection is not reused"
        );
    }

    fn parts(request: axum::http::Request<()>) -> request::Parts {
        request.into_parts().0
    }

    async fn written(mut outgoing: Outgoing) -> String {
        let (mut client, mut server) = tokio::io::duplex(1 << 20);
        outgoing.write_to(&mut client, LONG).await.unwrap();
        drop(client);
        let mut out = Vec::new();
        server.read_to_end(&mut out).await.unwrap();
        String::from_utf8(out).unwrap()
    }

    #[tokio::test]
    async fn a_request_goes_out_with_its_own_framing_and_the_client_address() {
        let request = axum::http::Request::post("/socket.io/?EIO=4&transport=polling&sid=abc")
            .header("host", "example.com")
            .header("connection", "keep-alive, x-drop")
            .header("content-length", "5")
            .body(())
            .unwrap();
        let outgoing = Outgoing::prepare(
            &parts(request),
            Body::from("4hey!"),
            false,
            Some(("x-iocluster-client-addr", "127.0.0.9:5000")),
            LONG,
        )
        .await
        .unwrap();
        assert!(outgoing.replayable());
        assert_eq!(
            written(outgoing).await,
            "POST /socket.io/?EIO=4&transport=polling&sid=abc HTTP/1.1\r\nhost: example.com\r\n\
             content-length: 5\r\nx-iocluster-client-addr: 127.0.0.9:5000\r\n\r\n4hey!"
        );
    }

    #[tokio::test]
    async fn a_body_of_unknown_length_goes_out_chunked() {
        let request = axum::http::Request::post("/x").body(()).unwrap();
        let pieces = futures_util::stream::iter([
            Ok::<_, io::Error>(Bytes::from_static(b"abc")),
            Ok(Bytes::from_static(b"de")),
        ]);
        let outgoing = Outgoing::prepare(
            &parts(request),
            Body::from_stream(pieces),
            false,
            None,
            LONG,
        )
        .await
        .unwrap();
        assert_eq!(
            written(outgoing).await,
            "POST /x HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn an_upgrade_keeps_its_upgrade_headers_and_a_big_body_streams() {
        let request = axum::http::Request::get("/ws?sid=1")
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-key", "k")
            .body(())
            .unwrap();
        let outgoing = Outgoing::prepare(&parts(request), Body::empty(), true, None, LONG)
            .await
            .unwrap();
        assert_eq!(
            written(outgoing).await,
            "GET /ws?sid=1 HTTP/1.1\r\nsec-websocket-key: k\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n"
        );

        let big = vec![b'z'; 3 * GATHER];
        let request = axum::http::Request::post("/big").body(()).unwrap();
        let outgoing = Outgoing::prepare(
            &parts(request),
            Body::from_stream(futures_util::stream::iter(
                big.chunks(1000)
                    .map(|c| Ok::<_, io::Error>(Bytes::copy_from_slice(c)))
                    .collect::<Vec<_>>(),
            )),
            false,
            None,
            LONG,
        )
        .await
        .unwrap();
        assert!(
            !outgoing.replayable(),
            "only the start of a big body is kept"
        );
        let text = written(outgoing).await;
        let (_, body) = text.split_once("\r\n\r\n").unwrap();
        let mut state = Chunked::Size;
        let mut input = BytesMut::from(body.as_bytes());
        let mut out = Vec::new();
        while let Some(data) = decode_chunked(&mut state, &mut input).unwrap() {
            out.extend_from_slice(&data);
        }
        assert_eq!(state, Chunked::Done);
        assert_eq!(out, big);
    }
}
