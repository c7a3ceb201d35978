//! A forwarded request on the wire: its head (hop-by-hop headers dropped,
//! its own framing) and as much of its body as came with it, in one
//! write; the rest of the body as it comes.

use std::time::Duration;

use axum::body::Body;
use axum::http::header::{self, HeaderName};
use axum::http::{Method, request};
use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::BodyExt;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::{ExchangeError, Framing, within};

/// How much of a request's body is gathered with its head for the first
/// write.
const GATHER: usize = 64 * 1024;

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

/// Headers that belong to one connection, not to the request (a
/// forwarded request's length is its own framing's).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

/// Whether `name` is one of [`HOP_BY_HOP`].
pub(crate) fn hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
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

#[cfg(test)]
mod tests {
    use std::io;

    use tokio::io::AsyncReadExt;

    use super::super::chunked::{Chunked, decode_chunked};
    use super::*;

    const LONG: Duration = Duration::from_secs(5);

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
            outgoing.rest.is_some(),
            "only the start of a big body is gathered"
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
