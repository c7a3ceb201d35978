//! Requests for another worker's session.
//!
//! - Another worker of this node: browsers reuse pooled connections across
//!   tabs, so a connection the master handed to worker A may later carry a
//!   request for a session of worker B. Worker A asks the master for a Unix
//!   stream to B and forwards the request over it (a WebSocket upgrade
//!   included): B serves it like any connection, and the client sees B's
//!   answer, not a 400.
//! - A worker of another node (a fleet without a sticky balancer): the
//!   request goes over this worker's link to the owning worker
//!   ([`super::mux`]; one authenticated connection to that node's peer
//!   port, routed to the owner by its master once): as one frame when it
//!   fits, else through a tunnel in the link as HTTP/1.1, with the
//!   client's address in `x-iocluster-client-addr`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use iocluster_engineio::{Cors, EngineQuery, ErrorCode, RequestError};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::exchange::{
    AnswerBody, AnswerHead, Conn, ExchangeError, Outgoing, hop_by_hop, read_answer_head,
};
use super::link::MasterLink;
use super::mux::client::{LinkRequest, Links, PeerKey};
use super::peers::PeerDialer;
use crate::peer::frame::REQUEST_BODY_MAX;
use crate::sid::{InstanceId, SessionHome, home_of};

/// The header in which a forwarding node tells the owner who the client
/// is; trusted on authenticated peer connections only.
pub(crate) const CLIENT_ADDR: &str = "x-iocluster-client-addr";

/// How long an answer is awaited after the owner stopped reading the
/// request (it answers before it closes, or not at all).
const ANSWER_AFTER_WRITE_ERROR: Duration = Duration::from_secs(1);

/// A worker's proxy to the other workers, of this node and of others.
pub(crate) struct Proxy {
    link: Arc<MasterLink>,
    /// Links to the workers of other nodes.
    links: Links,
    /// The engine's CORS policy, for this proxy's own error answers.
    cors: Option<Cors>,
    /// How long a forwarded request may make no progress: the engine's
    /// ping interval plus ping timeout (a poll is answered within that).
    deadline: Duration,
}

impl Proxy {
    pub(crate) fn new(
        link: Arc<MasterLink>,
        dialer: Arc<PeerDialer>,
        cors: Option<Cors>,
        deadline: Duration,
    ) -> Arc<Proxy> {
        Arc::new(Proxy {
            link,
            links: Links::new(dialer),
            cors,
            deadline,
        })
    }

    /// Where the session `request` names lives, when it is not here.
    pub(crate) fn foreign_home(&self, request: &Request) -> Option<SessionHome> {
        let home = EngineQuery::parse(request.uri().query().unwrap_or(""))
            .sid
            .and_then(home_of)?;
        (home.node != self.link.node() || home.instance != self.link.instance()).then_some(home)
    }

    /// Forwards a request for a session that lives at `home`, on another
    /// node or another worker of this one.
    pub(crate) async fn forward(&self, home: SessionHome, request: Request) -> Response {
        if home.node != self.link.node() {
            REQUESTS_TO_NODE.fetch_add(1, Ordering::Relaxed);
            forward_to_node(self, home, request).await
        } else {
            REQUESTS_TO_WORKER.fetch_add(1, Ordering::Relaxed);
            forward(self, home.instance, request).await
        }
    }
}

/// Takes the client's address from a request that came over an
/// authenticated peer connection: the client is who the forwarding node
/// says.
pub(crate) fn trust_client_addr(request: &mut Request) {
    let client = request
        .headers_mut()
        .remove(CLIENT_ADDR)
        .and_then(|value| value.to_str().ok()?.parse::<SocketAddr>().ok());
    if let Some(client) = client {
        request.extensions_mut().insert(ConnectInfo(client));
    }
}

/// Requests this worker's public router saw, by who served them: itself,
/// another worker of this node, another node.
pub(crate) static REQUESTS_SERVED: AtomicU64 = AtomicU64::new(0);
/// See [`REQUESTS_SERVED`].
pub(crate) static REQUESTS_TO_WORKER: AtomicU64 = AtomicU64::new(0);
/// See [`REQUESTS_SERVED`].
pub(crate) static REQUESTS_TO_NODE: AtomicU64 = AtomicU64::new(0);

/// `400 Session ID unknown`, as the engine answers it.
fn unknown_session(proxy: &Proxy, origin: Option<&HeaderValue>) -> Response {
    RequestError::new(ErrorCode::SessionIdUnknown)
        .to_http(proxy.cors.as_ref(), origin)
        .map(Body::from)
}

fn bad_request(proxy: &Proxy, origin: Option<&HeaderValue>) -> Response {
    RequestError::new(ErrorCode::BadRequest)
        .to_http(proxy.cors.as_ref(), origin)
        .map(Body::from)
}

/// A request taken apart for forwarding: what goes out, and what its
/// answer needs.
struct Forwarding {
    outgoing: Outgoing,
    method: Method,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
    /// The client's address.
    remote: Option<SocketAddr>,
}

impl Forwarding {
    /// Takes `request` apart; for another node (`tell_client`), with the
    /// client's address in [`CLIENT_ADDR`] (only this node says who the
    /// client is: a client's own is dropped). A body that cannot be read
    /// gets `400`.
    async fn prepare(
        proxy: &Proxy,
        mut request: Request,
        tell_client: bool,
    ) -> Result<Forwarding, Response> {
        let origin = request.headers().get(header::ORIGIN).cloned();
        let remote = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let client_upgrade = upgrade_of(&mut request);
        let method = request.method().clone();
        let (mut parts, body) = request.into_parts();
        let client = if tell_client {
            parts.headers.remove(CLIENT_ADDR);
            remote.map(|remote| remote.to_string())
        } else {
            None
        };
        let client = client.as_deref().map(|remote| (CLIENT_ADDR, remote));
        let upgrade = client_upgrade.is_some();
        match Outgoing::prepare(&parts, body, upgrade, client, proxy.deadline).await {
            Ok(outgoing) => Ok(Forwarding {
                outgoing,
                method,
                client_upgrade,
                remote,
            }),
            Err(error) => {
                tracing::debug!(%error, "request to forward not read");
                Err(bad_request(proxy, origin.as_ref()))
            }
        }
    }
}

/// Forwards a request to another worker of this node, over a stream the
/// master makes between the two.
async fn forward(proxy: &Proxy, owner: InstanceId, request: Request) -> Response {
    let origin = request.headers().get(header::ORIGIN).cloned();
    let forwarding = match Forwarding::prepare(proxy, request, false).await {
        Ok(forwarding) => forwarding,
        Err(refused) => return refused,
    };
    let Some(stream) = proxy.link.connect(owner, forwarding.remote).await else {
        return unknown_session(proxy, origin.as_ref());
    };
    relay(proxy, stream, forwarding, origin.as_ref()).await
}

/// Forwards a request to the node that owns its session, over this
/// worker's link to the owning worker: as a frame when it fits one, else
/// through a tunnel.
async fn forward_to_node(proxy: &Proxy, home: SessionHome, request: Request) -> Response {
    let origin = request.headers().get(header::ORIGIN).cloned();
    if !proxy.links.enabled() {
        return unknown_session(proxy, origin.as_ref());
    }
    let Some(addr) = proxy.link.peer_address(home.node).await else {
        return unknown_session(proxy, origin.as_ref());
    };
    let key = (addr, home.instance);
    if fits_a_link(&request) {
        return forward_over_link(proxy, key, request).await;
    }
    let query = request.uri().query().unwrap_or("").to_owned();
    let forwarding = match Forwarding::prepare(proxy, request, true).await {
        Ok(forwarding) => forwarding,
        Err(refused) => return refused,
    };
    match proxy.links.tunnel(key, &query, proxy.deadline).await {
        Ok(tunnel) => relay(proxy, tunnel, forwarding, origin.as_ref()).await,
        Err(error) => {
            tracing::debug!(node = %home.node, %error, "no tunnel to a peer");
            unknown_session(proxy, origin.as_ref())
        }
    }
}

/// Sends a prepared request over `stream` (to the owner of its session)
/// and gives the client the owner's answer; `Session ID unknown` when
/// none comes.
async fn relay<S>(
    proxy: &Proxy,
    stream: S,
    mut forwarding: Forwarding,
    origin: Option<&HeaderValue>,
) -> Response
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut conn = Conn::new(stream);
    let (outgoing, method) = (&mut forwarding.outgoing, &forwarding.method);
    match exchange(&mut conn, outgoing, method, proxy.deadline).await {
        Ok(head) => respond(head, conn, forwarding.client_upgrade, proxy.deadline),
        Err(error) => {
            tracing::debug!(%error, "forwarded request failed");
            unknown_session(proxy, origin)
        }
    }
}

/// Whether `request` goes over a link: no upgrade, and a body of known
/// length that fits a frame.
fn fits_a_link(request: &Request) -> bool {
    !request.headers().contains_key(header::UPGRADE)
        && http_body::Body::size_hint(request.body())
            .exact()
            .is_some_and(|length| length <= REQUEST_BODY_MAX as u64)
}

/// Forwards a request over the link to the worker `key` names, which
/// owns its session.
async fn forward_over_link(proxy: &Proxy, key: PeerKey, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let origin = parts.headers.get(header::ORIGIN).cloned();
    // A poll has no body: no timer for it.
    let body = if http_body::Body::is_end_stream(&body) {
        bytes::Bytes::new()
    } else {
        let read = axum::body::to_bytes(body, REQUEST_BODY_MAX);
        match tokio::time::timeout(proxy.deadline, read).await {
            Ok(Ok(body)) => body,
            _ => return bad_request(proxy, origin.as_ref()),
        }
    };
    let client = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let query = parts.uri.query().unwrap_or("");
    let request = LinkRequest {
        method: &parts.method,
        target,
        client,
        headers: &parts.headers,
        sends: travels,
        body: &body,
    };
    match proxy.links.send(key, query, request, proxy.deadline).await {
        Ok(response) => response,
        Err(error) => {
            tracing::debug!(%error, "request over a peer link failed");
            unknown_session(proxy, origin.as_ref())
        }
    }
}

/// Whether a client's header travels to the owner over a link: not one
/// of its connection's own, nor a claim to be another client (only this
/// node says who the client is).
fn travels(name: &HeaderName) -> bool {
    !hop_by_hop(name) && name != CLIENT_ADDR
}

/// Sends the request on `conn` and reads the head of its answer.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    outgoing: &mut Outgoing,
    method: &Method,
    deadline: Duration,
) -> Result<AnswerHead, ExchangeError> {
    let written = match outgoing.write_to(&mut conn.stream, deadline).await {
        Ok(()) => None,
        Err(ExchangeError::Io(error)) => Some(error),
        Err(error) => return Err(error),
    };
    let Some(error) = written else {
        return read_answer_head(conn, method, deadline).await;
    };
    // The owner stopped reading: it may have answered first (a body over
    // its limit gets 413), and that answer is the client's. Or it had
    // gone before the request.
    match read_answer_head(conn, method, ANSWER_AFTER_WRITE_ERROR).await {
        Ok(head) => Ok(head),
        Err(_)
            if matches!(
                error.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ) =>
        {
            Err(ExchangeError::Closed)
        }
        Err(_) => Err(ExchangeError::Io(error)),
    }
}

/// The client's side of a WebSocket upgrade the request asks for.
fn upgrade_of(request: &mut Request) -> Option<hyper::upgrade::OnUpgrade> {
    request
        .headers()
        .contains_key(header::UPGRADE)
        .then(|| hyper::upgrade::on(request))
}

/// The owner's answer, for the client: its body read from `conn` as the
/// client takes it (then `conn` is let go), or, for an upgrade,
/// the two connections spliced both ways.
fn respond<S>(
    head: AnswerHead,
    conn: Conn<S>,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
    deadline: Duration,
) -> Response
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let AnswerHead {
        status,
        mut headers,
        framing,
    } = head;
    if status == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_upgrade) = client_upgrade else {
            return StatusCode::BAD_GATEWAY.into_response();
        };
        tokio::spawn(splice(client_upgrade, conn));
        let mut response = Response::new(Body::empty());
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        return response;
    }
    headers.remove(header::CONNECTION);
    headers.remove("keep-alive");
    let body = AnswerBody::new(conn, framing, deadline).into_body();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// An upgraded connection relayed both ways: what the owner sent after
/// its answer's head first.
async fn splice<S>(client_upgrade: hyper::upgrade::OnUpgrade, mut owner: Conn<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Ok(client) = client_upgrade.await else {
        return;
    };
    let mut client = TokioIo::new(client);
    if !owner.buf.is_empty() && client.write_all(&owner.buf).await.is_err() {
        return;
    }
    owner.buf = bytes::BytesMut::new();
    let _ = tokio::io::copy_bidirectional(&mut client, &mut owner.stream).await;
}
