//! The forwarding worker's side: one link per owning worker (node
//! address, worker instance), opened when a first request needs it and
//! kept while it works; each request a stream on it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, Method, StatusCode};
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use iocluster_engineio::EngineQuery;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use super::stats::{LINKS, TUNNELS};
use super::tunnel::{Tunnel, Tunnels};
use super::writer::{self, Writer};
use super::{keep_alive, preface, read_frames, writer::HIGH_WATER};
use crate::peer::frame::{self, FrameError, Kind};
use crate::sid::InstanceId;
use crate::worker::exchange::{ExchangeError, read_answer_head};
use crate::worker::peers::PeerDialer;

/// The most bytes of one answer's body received and not yet taken by its
/// client; past it the stream is reset (the client that does not read
/// loses its answer, and holds no more memory).
const STREAM_QUEUED_MAX: usize = 2 * HIGH_WATER;

/// How often a link gives up the requests whose deadline has passed
/// without an answer: one timer per link instead of one per request, so a
/// request waits at most this much past its deadline.
const SWEEP_EVERY: Duration = Duration::from_millis(250);

/// Why a request got no answer over a link.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LinkError {
    #[error("cannot open a link: {0}")]
    Open(String),
    #[error("link closed")]
    Closed,
    /// The link closed before the request went out: it can be sent on
    /// another.
    #[error("link closed before the request went out")]
    NotSent,
    #[error("no answer in time")]
    Timeout,
    #[error("{0}")]
    Frame(#[from] FrameError),
}

/// A request to send over a link: the parts of it that travel.
pub(crate) struct LinkRequest<'a> {
    pub(crate) method: &'a Method,
    /// Path and query.
    pub(crate) target: &'a str,
    pub(crate) client: Option<SocketAddr>,
    /// The request's headers: those `sends` says travel.
    pub(crate) headers: &'a HeaderMap,
    pub(crate) sends: fn(&HeaderName) -> bool,
    pub(crate) body: &'a [u8],
}

/// Where a link goes: a worker of a node.
pub(crate) type PeerKey = (SocketAddr, InstanceId);

/// A worker's links to the workers of other nodes.
pub(crate) struct Links {
    dialer: Arc<PeerDialer>,
    open: Mutex<HashMap<PeerKey, Arc<Link>>>,
    opening: Mutex<HashMap<PeerKey, Arc<tokio::sync::Mutex<()>>>>,
}

impl Links {
    /// Whether this node has peer links.
    pub(crate) fn enabled(&self) -> bool {
        self.dialer.enabled()
    }

    pub(crate) fn new(dialer: Arc<PeerDialer>) -> Links {
        Links {
            dialer,
            open: Mutex::new(HashMap::new()),
            opening: Mutex::new(HashMap::new()),
        }
    }

    /// Sends `request` (for the session its `query` names) to the worker
    /// `key` names and returns its answer; the body of an answer that did
    /// not come whole arrives as the client reads it, each piece within
    /// `deadline`.
    pub(crate) async fn send(
        &self,
        key: PeerKey,
        query: &str,
        request: LinkRequest<'_>,
        deadline: Duration,
    ) -> Result<Response, LinkError> {
        // A link found closed before the request went out is replaced once.
        for _ in 0..2 {
            let link = self.link(key, query, deadline).await?;
            match link.send(&request, deadline).await {
                Err(LinkError::NotSent) => {}
                answer => return answer,
            }
        }
        Err(LinkError::Closed)
    }

    /// Opens a tunnel to the worker `key` names, for a request that does
    /// not fit a frame (an upgrade, a large or streamed body).
    pub(crate) async fn tunnel(
        &self,
        key: PeerKey,
        query: &str,
        deadline: Duration,
    ) -> Result<Tunnel, LinkError> {
        for _ in 0..2 {
            let link = self.link(key, query, deadline).await?;
            if let Some(tunnel) = link.open_tunnel() {
                return Ok(tunnel);
            }
        }
        Err(LinkError::Closed)
    }

    /// The open link to `key`, or a new one.
    async fn link(
        &self,
        key: PeerKey,
        query: &str,
        deadline: Duration,
    ) -> Result<Arc<Link>, LinkError> {
        if let Some(link) = self.open_link(key) {
            return Ok(link);
        }
        let opening = Arc::clone(self.opening.lock().entry(key).or_default());
        let _one_at_a_time = opening.lock().await;
        if let Some(link) = self.open_link(key) {
            return Ok(link);
        }
        let connected = self.connect(key.0, query, deadline).await;
        // Those waiting for this opening hold the lock; later ones find
        // the link (or open one again).
        self.opening.lock().remove(&key);
        let link = connected?;
        let mut open = self.open.lock();
        // Links to workers that have gone (a rolling restart gives new
        // instances) are let go as new links come.
        open.retain(|_, link| !link.writer.is_closed());
        if let Some(other) = open.get(&key) {
            // Another opening won a race (after one that failed): one
            // link per owner, the new one ends.
            link.close();
            return Ok(Arc::clone(other));
        }
        open.insert(key, Arc::clone(&link));
        Ok(link)
    }

    fn open_link(&self, key: PeerKey) -> Option<Arc<Link>> {
        let mut open = self.open.lock();
        match open.get(&key) {
            Some(link) if !link.writer.is_closed() => Some(Arc::clone(link)),
            Some(_) => {
                open.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Connects to the peer port at `addr` and asks the owner of the
    /// session `query` names for a link.
    async fn connect(
        &self,
        addr: SocketAddr,
        query: &str,
        deadline: Duration,
    ) -> Result<Arc<Link>, LinkError> {
        let open = |error: &dyn std::fmt::Display| LinkError::Open(error.to_string());
        let mut conn = self.dialer.connect(addr).await.map_err(|e| open(&e))?;
        keep_alive(&conn.stream);
        let sid = EngineQuery::parse(query).sid.unwrap_or_default();
        let asked = tokio::time::timeout(deadline, conn.stream.write_all(preface(sid).as_bytes()))
            .await
            .map_err(|_| LinkError::Timeout)?;
        asked.map_err(|e| open(&e))?;
        let answer = read_answer_head(&mut conn, &Method::GET, deadline)
            .await
            .map_err(|e: ExchangeError| open(&e))?;
        if answer.status != StatusCode::SWITCHING_PROTOCOLS {
            return Err(LinkError::Open(format!("answered {}", answer.status)));
        }
        let (read, write) = conn.stream.into_split();
        LINKS.fetch_add(1, Ordering::Relaxed);
        Ok(Link::start(read, write, conn.buf))
    }
}

/// One link to a worker of another node.
pub(super) struct Link {
    writer: Arc<Writer>,
    tunnels: Arc<Tunnels>,
    streams: Mutex<Streams>,
}

struct Streams {
    next: u32,
    open: HashMap<u32, Waiting>,
}

/// A stream waiting for its answer: its head (until a deadline), or more
/// of its body.
enum Waiting {
    Head(oneshot::Sender<Result<Answer, LinkError>>, Instant),
    Body(mpsc::UnboundedSender<Piece>, Arc<AtomicUsize>),
}

/// An answer's head and the start of its body.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    /// The rest of the body, when it did not come whole.
    rest: Option<(mpsc::UnboundedReceiver<Piece>, Arc<AtomicUsize>)>,
}

/// More of a body; an error when the stream ended before its end.
type Piece = Result<Bytes, LinkError>;

impl Link {
    /// A link over an accepted connection's halves; `buf` holds what was
    /// read after the owner's answer.
    pub(super) fn start<R, W>(read: R, write: W, buf: BytesMut) -> Arc<Link>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let link = Arc::new(Link {
            writer: Writer::new(),
            tunnels: Arc::default(),
            streams: Mutex::new(Streams {
                next: 0,
                open: HashMap::new(),
            }),
        });
        tokio::spawn(writer::run(Arc::clone(&link.writer), write));
        tokio::spawn(read_answers(Arc::clone(&link), read, buf));
        tokio::spawn(give_up_late(Arc::downgrade(&link)));
        link
    }

    /// A stream number no open stream or tunnel has.
    fn next_id(&self, streams: &mut Streams) -> u32 {
        let mut id = streams.next;
        while streams.open.contains_key(&id) || self.tunnels.contains(id) {
            id = id.wrapping_add(1);
        }
        streams.next = id.wrapping_add(1);
        id
    }

    /// A new tunnel; none once the link is closed.
    pub(super) fn open_tunnel(&self) -> Option<Tunnel> {
        let id = self.next_id(&mut self.streams.lock());
        let tunnel = self.tunnels.open(id, Arc::clone(&self.writer));
        TUNNELS.fetch_add(1, Ordering::Relaxed);
        self.writer
            .push(|out| frame::put_open(out, id))
            .then_some(tunnel)
    }

    pub(super) async fn send(
        self: &Arc<Self>,
        request: &LinkRequest<'_>,
        deadline: Duration,
    ) -> Result<Response, LinkError> {
        let (head_tx, head_rx) = oneshot::channel();
        let expires = Instant::now() + deadline;
        let stream = {
            let mut streams = self.streams.lock();
            let id = self.next_id(&mut streams);
            streams.open.insert(id, Waiting::Head(head_tx, expires));
            id
        };
        let mut open = OpenStream {
            link: Arc::clone(self),
            id: stream,
            done: false,
        };
        let mut encoded = Ok(());
        let queued = self
            .writer
            .push_with_room(|out: &mut BytesMut| {
                encoded = frame::put_request(
                    out,
                    stream,
                    request.method,
                    request.target,
                    request.client,
                    request.headers,
                    request.sends,
                    request.body,
                );
            })
            .await;
        if !queued {
            return Err(LinkError::NotSent);
        }
        encoded?;
        // The deadline is kept by the link's sweep (`give_up_late`).
        let answer = match head_rx.await {
            Ok(answer) => answer?,
            Err(_) => return Err(LinkError::Closed),
        };
        let body = match answer.rest {
            None => {
                open.finished();
                Body::from(answer.body)
            }
            Some((rest, queued)) => {
                let first = futures_util::stream::iter([Ok::<_, LinkError>(answer.body)]);
                let rest = futures_util::stream::unfold(
                    (rest, queued, open),
                    move |(mut rest, queued, mut open)| async move {
                        match tokio::time::timeout(deadline, rest.recv()).await {
                            Ok(Some(Ok(piece))) => {
                                queued.fetch_sub(piece.len(), Ordering::Relaxed);
                                Some((Ok(piece), (rest, queued, open)))
                            }
                            Ok(Some(Err(error))) => Some((Err(error), (rest, queued, open))),
                            Ok(None) => {
                                open.finished();
                                None
                            }
                            Err(_) => Some((Err(LinkError::Timeout), (rest, queued, open))),
                        }
                    },
                );
                Body::from_stream(first.chain(rest))
            }
        };
        let mut response = Response::new(body);
        *response.status_mut() = answer.status;
        *response.headers_mut() = answer.headers;
        Ok(response)
    }

    /// Gives up the streams whose answer has not begun by their deadline:
    /// each learns it timed out, and the owner is told to drop it.
    fn give_up_expired(&self, now: Instant) {
        let expired: Vec<(u32, Waiting)> = {
            let mut streams = self.streams.lock();
            let ids: Vec<u32> = streams
                .open
                .iter()
                .filter(
                    |(_, waiting)| matches!(waiting, Waiting::Head(_, expires) if *expires <= now),
                )
                .map(|(id, _)| *id)
                .collect();
            ids.into_iter()
                .filter_map(|id| Some((id, streams.open.remove(&id)?)))
                .collect()
        };
        for (id, waiting) in expired {
            if let Waiting::Head(head, _) = waiting {
                let _ = head.send(Err(LinkError::Timeout));
            }
            self.writer.push(|out| frame::put_reset(out, id));
        }
    }

    /// Ends the link: every stream still waiting learns it is closed.
    fn close(&self) {
        self.writer.close();
        self.tunnels.reset_all();
        let open = std::mem::take(&mut self.streams.lock().open);
        for (_, waiting) in open {
            if let Waiting::Body(more, _) = waiting {
                let _ = more.send(Err(LinkError::Closed));
            }
        }
    }
}

/// A stream of this side: dropped before its answer ended (the client
/// went away, or its time ran out), the owner is told to drop it too.
struct OpenStream {
    link: Arc<Link>,
    id: u32,
    /// The answer arrived whole.
    done: bool,
}

impl OpenStream {
    /// The answer arrived whole: nothing to tell the owner.
    fn finished(&mut self) {
        self.link.streams.lock().open.remove(&self.id);
        self.done = true;
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let was_open = self.link.streams.lock().open.remove(&self.id).is_some();
        if was_open {
            let id = self.id;
            self.link.writer.push(|out| frame::put_reset(out, id));
        }
    }
}

/// Every [`SWEEP_EVERY`] while the link is open, gives up the requests
/// past their deadline.
async fn give_up_late(link: Weak<Link>) {
    let mut ticks = tokio::time::interval(SWEEP_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(link) = link.upgrade() else {
            return;
        };
        if link.writer.is_closed() {
            return;
        }
        link.give_up_expired(Instant::now());
    }
}

/// Reads the owner's frames until the link ends, and hands each answer
/// to its stream.
async fn read_answers<R: AsyncRead + Unpin>(link: Arc<Link>, mut read: R, buf: BytesMut) {
    if let Err(error) = read_frames(&mut read, buf, |frame| take_frame(&link, frame)).await {
        tracing::debug!(%error, "peer link ended");
    }
    link.close();
}

/// One frame from the owner.
fn take_frame(link: &Link, frame: frame::Frame) -> Result<(), LinkError> {
    if link.tunnels.take(&frame)? {
        return Ok(());
    }
    let id = frame.stream;
    match frame.kind {
        Kind::Head => {
            let head = frame::read_head(frame.payload)?;
            let mut streams = link.streams.lock();
            let Some(Waiting::Head(waiting, _)) = streams.open.remove(&id) else {
                return Ok(());
            };
            let rest = (!head.end).then(|| {
                let (more, rest) = mpsc::unbounded_channel();
                let queued = Arc::new(AtomicUsize::new(0));
                streams
                    .open
                    .insert(id, Waiting::Body(more, Arc::clone(&queued)));
                (rest, queued)
            });
            drop(streams);
            let _ = waiting.send(Ok(Answer {
                status: head.status,
                headers: head.headers,
                body: head.body,
                rest,
            }));
        }
        Kind::Data => {
            let (piece, end) = frame::read_data(frame.payload)?;
            let mut streams = link.streams.lock();
            let Some(Waiting::Body(more, queued)) = streams.open.get(&id) else {
                return Ok(());
            };
            let total = queued.fetch_add(piece.len(), Ordering::Relaxed) + piece.len();
            if total > STREAM_QUEUED_MAX {
                let _ = more.send(Err(LinkError::Closed));
                streams.open.remove(&id);
                drop(streams);
                link.writer.push(|out| frame::put_reset(out, id));
                return Ok(());
            }
            if !piece.is_empty() {
                let _ = more.send(Ok(piece));
            }
            if end {
                streams.open.remove(&id);
            }
        }
        Kind::Reset => {
            if let Some(Waiting::Body(more, _)) = link.streams.lock().open.remove(&id) {
                let _ = more.send(Err(LinkError::Closed));
            }
        }
        // A window for a tunnel that just ended.
        Kind::Window => {}
        Kind::Request | Kind::Open => {
            return Err(FrameError::Malformed("a request from the owner").into());
        }
    }
    Ok(())
}
