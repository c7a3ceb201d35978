//! The frames of a multiplexed peer link: many forwarded requests and
//! their answers over one authenticated connection between a worker and
//! the owner of the sessions, each tagged with a stream number.
//!
//! A frame is a 9-byte header — payload length (u32, big-endian), kind
//! (u8), stream (u32, big-endian) — and its payload:
//!
//! | kind | direction | payload |
//! |---|---|---|
//! | `Request` (1) | forwarder → owner | method, target, client address, headers, the whole body |
//! | `Head` (2) | owner → forwarder | end flag, status, headers, the start of the body |
//! | `Data` (3) | owner → forwarder; either way in a tunnel | end flag, more bytes |
//! | `Reset` (4) | either way | nothing: the stream is abandoned |
//! | `Open` (5) | forwarder → owner | nothing: a tunnel (a byte stream) opens |
//! | `Window` (6) | either way in a tunnel | credit: how many more bytes may come (u32) |
//!
//! Strings and header values carry a u16 length, header lists a u16
//! count; the client's address is a family byte (0: none, 4, 6), its
//! address bytes and a u16 port; a request's body and an answer's body
//! bytes take the rest of the payload. Every frame is at most [`FRAME_MAX`] bytes of payload.
//! Decoding never panics: anything malformed is a [`FrameError`], and the
//! link that carried it is closed.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The header's length.
pub(crate) const HEADER_LEN: usize = 9;
/// The most payload a frame carries: a request's head and body (bodies
/// over [`REQUEST_BODY_MAX`] do not go over a link) or a piece of an
/// answer's body.
pub(crate) const FRAME_MAX: usize = 256 * 1024;
/// The largest request body a link carries; larger ones (and upgrades)
/// take a connection of their own.
pub(crate) const REQUEST_BODY_MAX: usize = 64 * 1024;
/// The most body bytes an owner puts in one frame.
pub(crate) const DATA_MAX: usize = 128 * 1024;

/// What a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Request = 1,
    Head = 2,
    Data = 3,
    Reset = 4,
    Open = 5,
    Window = 6,
}

impl Kind {
    fn from_byte(byte: u8) -> Option<Kind> {
        match byte {
            1 => Some(Kind::Request),
            2 => Some(Kind::Head),
            3 => Some(Kind::Data),
            4 => Some(Kind::Reset),
            5 => Some(Kind::Open),
            6 => Some(Kind::Window),
            _ => None,
        }
    }
}

/// A frame read from a link.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) kind: Kind,
    pub(crate) stream: u32,
    pub(crate) payload: Bytes,
}

/// Why a link's bytes are not frames.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum FrameError {
    #[error("frame of {0} bytes, over the limit")]
    TooLarge(usize),
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    #[error("malformed frame: {0}")]
    Malformed(&'static str),
}

/// A payload that ends before what it says it holds.
const TRUNCATED: FrameError = FrameError::Malformed("truncated");

/// The most bytes a client address takes: family, IPv6 address, port.
const ADDR_MAX: usize = 1 + 16 + 2;

/// The next whole frame at the start of `buf`, taken out of it; none
/// until one has arrived whole.
pub(crate) fn decode(buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let length = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if length > FRAME_MAX {
        return Err(FrameError::TooLarge(length));
    }
    let kind = Kind::from_byte(buf[4]).ok_or(FrameError::UnknownKind(buf[4]))?;
    if buf.len() < HEADER_LEN + length {
        buf.reserve(HEADER_LEN + length - buf.len());
        return Ok(None);
    }
    let stream = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]);
    buf.advance(HEADER_LEN);
    let payload = buf.split_to(length).freeze();
    Ok(Some(Frame {
        kind,
        stream,
        payload,
    }))
}

/// Appends a frame of `kind` on `stream` to `out`, its payload written by
/// `payload`.
fn put_frame(out: &mut BytesMut, kind: Kind, stream: u32, payload: impl FnOnce(&mut BytesMut)) {
    let start = out.len();
    out.put_u32(0);
    out.put_u8(kind as u8);
    out.put_u32(stream);
    payload(out);
    let length = (out.len() - start - HEADER_LEN) as u32;
    out[start..start + 4].copy_from_slice(&length.to_be_bytes());
}

/// A forwarded request, as the owner gets it.
#[derive(Debug, PartialEq)]
pub(crate) struct RequestFrame {
    pub(crate) method: Method,
    /// Path and query.
    pub(crate) target: String,
    /// The client's address, as the forwarding node saw it.
    pub(crate) client: Option<SocketAddr>,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// Appends a `Request` frame with the `headers` that `keep` keeps (the
/// connection's own are not the request's); one over [`FRAME_MAX`], or
/// with a string or header longer than a u16 allows, is refused (nothing
/// appended).
#[allow(clippy::too_many_arguments)]
pub(crate) fn put_request(
    out: &mut BytesMut,
    stream: u32,
    method: &Method,
    target: &str,
    client: Option<SocketAddr>,
    headers: &HeaderMap,
    keep: impl Fn(&HeaderName) -> bool,
    body: &[u8],
) -> Result<(), FrameError> {
    let short = |s: usize| u16::try_from(s).map_err(|_| FrameError::Malformed("string too long"));
    short(target.len())?;
    // Two string lengths, the address, the header count.
    let mut length = method.as_str().len() + target.len() + 2 + 2 + ADDR_MAX + 2;
    let mut count = 0;
    for (name, value) in headers.iter().filter(|(name, _)| keep(name)) {
        length += 4 + usize::from(short(name.as_str().len())?) + usize::from(short(value.len())?);
        count += 1;
    }
    short(count)?;
    length += body.len();
    if length > FRAME_MAX {
        return Err(FrameError::TooLarge(length));
    }
    put_frame(out, Kind::Request, stream, |out| {
        put_str(out, method.as_str().as_bytes());
        put_str(out, target.as_bytes());
        put_addr(out, client);
        out.put_u16(count as u16);
        for (name, value) in headers.iter().filter(|(name, _)| keep(name)) {
            put_str(out, name.as_str().as_bytes());
            put_str(out, value.as_bytes());
        }
        out.put_slice(body);
    });
    Ok(())
}

/// Reads a `Request` frame's payload.
pub(crate) fn read_request(mut payload: Bytes) -> Result<RequestFrame, FrameError> {
    let method = Method::from_bytes(&take_str(&mut payload)?)
        .map_err(|_| FrameError::Malformed("method"))?;
    let target = String::from_utf8(take_str(&mut payload)?.to_vec())
        .map_err(|_| FrameError::Malformed("target"))?;
    let client = take_addr(&mut payload)?;
    let headers = take_headers(&mut payload)?;
    Ok(RequestFrame {
        method,
        target,
        client,
        headers,
        body: payload,
    })
}

/// An answer's head, as the forwarder gets it.
#[derive(Debug, PartialEq)]
pub(crate) struct HeadFrame {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    /// The start of the body.
    pub(crate) body: Bytes,
    /// Whether that is the whole body.
    pub(crate) end: bool,
}

/// Appends a `Head` frame; headers that do not fit a u16 length are
/// left out (the owner's own answers never have such).
pub(crate) fn put_head(
    out: &mut BytesMut,
    stream: u32,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    end: bool,
) {
    put_frame(out, Kind::Head, stream, |out| {
        out.put_u8(u8::from(end));
        out.put_u16(status.as_u16());
        put_headers(out, headers);
        out.put_slice(body);
    });
}

/// Reads a `Head` frame's payload.
pub(crate) fn read_head(mut payload: Bytes) -> Result<HeadFrame, FrameError> {
    if payload.remaining() < 3 {
        return Err(FrameError::Malformed("short head"));
    }
    let end = payload.get_u8() != 0;
    let status =
        StatusCode::from_u16(payload.get_u16()).map_err(|_| FrameError::Malformed("status"))?;
    let headers = take_headers(&mut payload)?;
    Ok(HeadFrame {
        status,
        headers,
        body: payload,
        end,
    })
}

/// Appends a `Data` frame.
pub(crate) fn put_data(out: &mut BytesMut, stream: u32, body: &[u8], end: bool) {
    put_frame(out, Kind::Data, stream, |out| {
        out.put_u8(u8::from(end));
        out.put_slice(body);
    });
}

/// Reads a `Data` frame's payload: the bytes, and whether they end the
/// body.
pub(crate) fn read_data(mut payload: Bytes) -> Result<(Bytes, bool), FrameError> {
    if payload.is_empty() {
        return Err(FrameError::Malformed("short data"));
    }
    let end = payload.get_u8() != 0;
    Ok((payload, end))
}

/// Appends a `Reset` frame.
pub(crate) fn put_reset(out: &mut BytesMut, stream: u32) {
    put_frame(out, Kind::Reset, stream, |_| {});
}

/// Appends an `Open` frame.
pub(crate) fn put_open(out: &mut BytesMut, stream: u32) {
    put_frame(out, Kind::Open, stream, |_| {});
}

/// Appends a `Window` frame giving `credit` more bytes.
pub(crate) fn put_window(out: &mut BytesMut, stream: u32, credit: usize) {
    put_frame(out, Kind::Window, stream, |out| {
        out.put_u32(u32::try_from(credit).unwrap_or(u32::MAX));
    });
}

/// Reads a `Window` frame's payload: the credit.
pub(crate) fn read_window(mut payload: Bytes) -> Result<usize, FrameError> {
    if payload.remaining() != 4 {
        return Err(FrameError::Malformed("window"));
    }
    Ok(payload.get_u32() as usize)
}

fn put_addr(out: &mut BytesMut, addr: Option<SocketAddr>) {
    let Some(addr) = addr else {
        out.put_u8(0);
        return;
    };
    match addr.ip() {
        IpAddr::V4(ip) => {
            out.put_u8(4);
            out.put_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.put_u8(6);
            out.put_slice(&ip.octets());
        }
    }
    out.put_u16(addr.port());
}

fn take_addr(payload: &mut Bytes) -> Result<Option<SocketAddr>, FrameError> {
    let ip = match payload.try_get_u8().map_err(|_| TRUNCATED)? {
        0 => return Ok(None),
        4 => IpAddr::from(take_array::<4>(payload)?),
        6 => IpAddr::from(take_array::<16>(payload)?),
        _ => return Err(FrameError::Malformed("client address family")),
    };
    let port = payload.try_get_u16().map_err(|_| TRUNCATED)?;
    Ok(Some(SocketAddr::new(ip, port)))
}

fn take_array<const N: usize>(payload: &mut Bytes) -> Result<[u8; N], FrameError> {
    let mut bytes = [0; N];
    payload
        .try_copy_to_slice(&mut bytes)
        .map_err(|_| TRUNCATED)?;
    Ok(bytes)
}

fn put_str(out: &mut BytesMut, s: &[u8]) {
    out.put_u16(s.len() as u16);
    out.put_slice(s);
}

fn put_headers(out: &mut BytesMut, headers: &HeaderMap) {
    let fits = |(name, value): &(&HeaderName, &HeaderValue)| {
        name.as_str().len() <= usize::from(u16::MAX) && value.len() <= usize::from(u16::MAX)
    };
    let count = headers
        .iter()
        .filter(fits)
        .count()
        .min(usize::from(u16::MAX));
    out.put_u16(count as u16);
    for (name, value) in headers.iter().filter(fits).take(count) {
        put_str(out, name.as_str().as_bytes());
        put_str(out, value.as_bytes());
    }
}

fn take_str(payload: &mut Bytes) -> Result<Bytes, FrameError> {
    if payload.remaining() < 2 {
        return Err(TRUNCATED);
    }
    let length = usize::from(payload.get_u16());
    if payload.remaining() < length {
        return Err(TRUNCATED);
    }
    Ok(payload.split_to(length))
}

fn take_headers(payload: &mut Bytes) -> Result<HeaderMap, FrameError> {
    if payload.remaining() < 2 {
        return Err(TRUNCATED);
    }
    let count = usize::from(payload.get_u16());
    let mut headers = HeaderMap::with_capacity(count.min(64));
    for _ in 0..count {
        let name = HeaderName::from_bytes(&take_str(payload)?)
            .map_err(|_| FrameError::Malformed("header name"))?;
        let value = HeaderValue::from_maybe_shared(take_str(payload)?)
            .map_err(|_| FrameError::Malformed("header value"))?;
        headers.append(name, value);
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("text/plain"));
        headers.append("x-many", HeaderValue::from_static("one"));
        headers.append("x-many", HeaderValue::from_static("two"));
        headers
    }

    fn one(buf: &mut BytesMut) -> Frame {
        decode(buf).unwrap().expect("a whole frame")
    }

    #[test]
    fn a_request_comes_out_as_it_went_in() {
        let mut buf = BytesMut::new();
        let target = "/socket.io/?EIO=4&transport=polling&sid=abc";
        for client in [None, Some("10.0.0.1:5000"), Some("[2001:db8::7]:65535")] {
            let client = client.map(|c| c.parse::<SocketAddr>().unwrap());
            let mut sent = headers();
            sent.insert("connection", HeaderValue::from_static("keep-alive"));
            let keep = |name: &HeaderName| name != "connection";
            put_request(
                &mut buf,
                7,
                &Method::POST,
                target,
                client,
                &sent,
                keep,
                b"4hello",
            )
            .unwrap();
            let frame = one(&mut buf);
            assert_eq!((frame.kind, frame.stream), (Kind::Request, 7));
            let request = read_request(frame.payload).unwrap();
            assert_eq!(
                request,
                RequestFrame {
                    method: Method::POST,
                    target: target.to_owned(),
                    client,
                    headers: headers(),
                    body: Bytes::from_static(b"4hello"),
                }
            );
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn a_client_address_of_an_unknown_family_is_malformed() {
        let mut buf = BytesMut::new();
        let client = Some("10.0.0.1:5000".parse().unwrap());
        let all = |_: &HeaderName| true;
        put_request(&mut buf, 1, &Method::GET, "/", client, &headers(), all, b"").unwrap();
        let payload = one(&mut buf).payload;
        let mut forged = payload.to_vec();
        // The family byte follows the method ("GET") and the target ("/").
        let family = 2 + 3 + 2 + 1;
        assert_eq!(forged[family], 4);
        forged[family] = 5;
        assert_eq!(
            read_request(Bytes::from(forged)).unwrap_err(),
            FrameError::Malformed("client address family")
        );
    }

    #[test]
    fn heads_data_and_resets_come_out_as_they_went_in_one_after_another() {
        let mut buf = BytesMut::new();
        put_head(&mut buf, 1, StatusCode::OK, &headers(), b"start", false);
        put_data(&mut buf, 1, b"end", true);
        put_reset(&mut buf, 2);
        put_open(&mut buf, 4);
        put_window(&mut buf, 4, 65_536);
        let head = one(&mut buf);
        assert_eq!((head.kind, head.stream), (Kind::Head, 1));
        assert_eq!(
            read_head(head.payload).unwrap(),
            HeadFrame {
                status: StatusCode::OK,
                headers: headers(),
                body: Bytes::from_static(b"start"),
                end: false,
            }
        );
        let data = one(&mut buf);
        assert_eq!(
            read_data(data.payload).unwrap(),
            (Bytes::from_static(b"end"), true)
        );
        let reset = one(&mut buf);
        assert_eq!((reset.kind, reset.stream), (Kind::Reset, 2));
        let open = one(&mut buf);
        assert_eq!((open.kind, open.stream), (Kind::Open, 4));
        let window = one(&mut buf);
        assert_eq!(window.kind, Kind::Window);
        assert_eq!(read_window(window.payload).unwrap(), 65_536);
        assert!(decode(&mut buf).unwrap().is_none());
    }

    #[test]
    fn a_frame_cut_anywhere_waits_for_the_rest() {
        let mut whole = BytesMut::new();
        put_head(&mut whole, 3, StatusCode::OK, &headers(), b"ok", true);
        for cut in 0..whole.len() {
            let mut buf = BytesMut::from(&whole[..cut]);
            assert!(decode(&mut buf).unwrap().is_none(), "cut at {cut}");
            buf.extend_from_slice(&whole[cut..]);
            assert_eq!(one(&mut buf).stream, 3);
        }
    }

    #[test]
    fn oversized_and_unknown_frames_are_errors() {
        let mut buf = BytesMut::new();
        buf.put_u32(FRAME_MAX as u32 + 1);
        buf.put_u8(1);
        buf.put_u32(0);
        assert_eq!(
            decode(&mut buf).unwrap_err(),
            FrameError::TooLarge(FRAME_MAX + 1)
        );
        let mut buf = BytesMut::from(&[0, 0, 0, 0, 9, 0, 0, 0, 0][..]);
        assert_eq!(decode(&mut buf).unwrap_err(), FrameError::UnknownKind(9));
        let body = vec![0u8; FRAME_MAX];
        let error = put_request(
            &mut BytesMut::new(),
            1,
            &Method::POST,
            "/",
            None,
            &HeaderMap::new(),
            |_| true,
            &body,
        );
        assert!(matches!(error, Err(FrameError::TooLarge(_))));
    }

    #[test]
    fn truncated_payloads_are_malformed() {
        let mut buf = BytesMut::new();
        let client = Some("[::1]:80".parse().unwrap());
        put_request(
            &mut buf,
            1,
            &Method::GET,
            "/x",
            client,
            &headers(),
            |_| true,
            b"",
        )
        .unwrap();
        let payload = one(&mut buf).payload;
        for cut in 0..payload.len() {
            assert!(read_request(payload.slice(..cut)).is_err(), "cut at {cut}");
        }
        assert!(read_head(Bytes::from_static(b"\x01\x00")).is_err());
        assert!(read_head(Bytes::from_static(b"\x01\x00\x07\x00\x00")).is_err());
        assert!(read_data(Bytes::new()).is_err());
        assert!(read_window(Bytes::from_static(b"\0\0\x01")).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(frame)) = decode(&mut buf) {
                let _ = read_request(frame.payload.clone());
                let _ = read_head(frame.payload.clone());
                let _ = read_window(frame.payload.clone());
                let _ = read_data(frame.payload);
            }
        }

        #[test]
        fn answers_round_trip(status in 100u16..600, body in proptest::collection::vec(any::<u8>(), 0..512), end: bool, stream: u32) {
            let mut buf = BytesMut::new();
            let status = StatusCode::from_u16(status).unwrap();
            put_head(&mut buf, stream, status, &headers(), &body, end);
            let frame = decode(&mut buf).unwrap().unwrap();
            prop_assert_eq!(frame.stream, stream);
            let head = read_head(frame.payload).unwrap();
            prop_assert_eq!(head, HeadFrame { status, headers: headers(), body: Bytes::from(body), end });
        }
    }
}
