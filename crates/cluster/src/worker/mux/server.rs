//! The owning worker's side: every request frame served by the app as
//! other nodes reach it (at once, in the link's reader, when the app
//! answers without waiting, as a POST's `ok`; else in a task of its own,
//! dropped when the forwarder resets the stream or the link ends), its
//! answer sent back as a `Head` frame with the body when the body is ready
//! at once, else as `Data` frames as the body comes.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Waker};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::header;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use iocluster_engineio::ConnectionLimits;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::AbortHandle;
use tower::ServiceExt;

use super::tunnel::Tunnels;
use super::writer::{self, Writer};
use super::{ACCEPTED, keep_alive, read_frames};
use crate::peer::frame::{self, DATA_MAX, Frame, FrameError, Kind};

/// The most streams a link serves at once; a request past it is reset.
const MAX_STREAMS: usize = 65_536;

/// The streams being served: each one's task, once it is spawned.
type Served = Arc<Mutex<HashMap<u32, Option<AbortHandle>>>>;

/// Serves a link another node's worker asked for: `frames` are the bytes
/// that followed its request for the link.
/// `app` serves its requests and tunnels (the app as other nodes reach
/// it: it trusts the client address they give); `limits` are a
/// connection's, for each tunnel.
pub(crate) async fn serve_link(
    mut stream: TcpStream,
    frames: Bytes,
    app: Router,
    limits: ConnectionLimits,
) {
    if stream.write_all(ACCEPTED).await.is_err() {
        return;
    }
    keep_alive(&stream);
    let (read, write) = stream.into_split();
    serve_frames(read, write, frames, app, limits).await;
}

/// Serves the frames of a link from `read`, answering on `write`.
pub(super) async fn serve_frames<R, W>(
    mut read: R,
    write: W,
    frames: Bytes,
    app: Router,
    limits: ConnectionLimits,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let writer = Writer::new();
    tokio::spawn(writer::run(Arc::clone(&writer), write));
    let served: Served = Arc::default();
    let tunnels: Arc<Tunnels> = Arc::default();
    let link = LinkSide {
        app,
        limits,
        writer: Arc::clone(&writer),
        served: Arc::clone(&served),
        tunnels: Arc::clone(&tunnels),
    };
    let buf = BytesMut::from(&frames[..]);
    let read = read_frames(&mut read, buf, |frame| take_frame(frame, &link)).await;
    if let Err(error) = read {
        tracing::debug!(%error, "peer link closed");
    }
    writer.close();
    tunnels.reset_all();
    for (_, task) in std::mem::take(&mut *served.lock()) {
        if let Some(task) = task {
            task.abort();
        }
    }
}

/// What serves one link.
struct LinkSide {
    app: Router,
    limits: ConnectionLimits,
    writer: Arc<Writer>,
    served: Served,
    tunnels: Arc<Tunnels>,
}

/// One frame from the forwarder.
fn take_frame(frame: Frame, link: &LinkSide) -> Result<(), FrameError> {
    if link.tunnels.take(&frame)? {
        return Ok(());
    }
    let id = frame.stream;
    match frame.kind {
        Kind::Request => {
            let request = frame::read_request(frame.payload)?;
            if !link.reserve(id) {
                return Ok(());
            }
            let serving = serve_stream(
                id,
                request,
                link.app.clone(),
                Arc::clone(&link.writer),
                Arc::clone(&link.served),
            );
            if let Some(waiting) = served_at_once(serving) {
                let task = tokio::spawn(waiting);
                link.spawned(id, &task);
            }
        }
        Kind::Open => {
            if !link.reserve(id) {
                return Ok(());
            }
            let tunnel = link.tunnels.open(id, Arc::clone(&link.writer));
            let (app, limits, served) = (link.app.clone(), link.limits, Arc::clone(&link.served));
            let task = tokio::spawn(async move {
                if let Err(error) =
                    iocluster_engineio::serve_io(tunnel, None, Bytes::new(), app, limits).await
                {
                    tracing::debug!(%error, "tunnel ended with an error");
                }
                served.lock().remove(&id);
            });
            link.spawned(id, &task);
        }
        Kind::Reset => {
            if let Some(Some(task)) = link.served.lock().remove(&id) {
                task.abort();
            }
        }
        // For a tunnel that just ended.
        Kind::Data | Kind::Window => {}
        Kind::Head => return Err(FrameError::Malformed("an answer from the forwarder")),
    }
    Ok(())
}

impl LinkSide {
    /// Makes room for stream `id`; false (and the stream reset) when the
    /// link serves too many, or `id` is in use.
    fn reserve(&self, id: u32) -> bool {
        let mut served = self.served.lock();
        if served.len() >= MAX_STREAMS || served.contains_key(&id) {
            drop(served);
            self.writer.push(|out| frame::put_reset(out, id));
            return false;
        }
        served.insert(id, None);
        true
    }

    /// Records the task serving stream `id`, unless it is done already.
    fn spawned(&self, id: u32, task: &tokio::task::JoinHandle<()>) {
        if let Some(slot) = self.served.lock().get_mut(&id) {
            *slot = Some(task.abort_handle());
        }
    }
}

/// Polls `serving` once here; what is not done by then is returned, to be
/// spawned. Most requests (a POST, a poll with packets waiting) are
/// answered in that one poll, which spares them a task. The first poll's
/// waker wakes nothing: the task's first poll registers its own, as every
/// future's next poll must.
fn served_at_once<F>(serving: F) -> Option<Pin<Box<F>>>
where
    F: Future<Output = ()>,
{
    let mut serving = Box::pin(serving);
    let mut cx = Context::from_waker(Waker::noop());
    serving
        .as_mut()
        .poll(&mut cx)
        .is_pending()
        .then_some(serving)
}

/// Serves one request and sends its answer.
async fn serve_stream(
    id: u32,
    request: frame::RequestFrame,
    app: Router,
    writer: Arc<Writer>,
    served: Served,
) {
    let answered = answer(id, request, app, &writer).await;
    served.lock().remove(&id);
    if answered.is_err() {
        writer.push(|out| frame::put_reset(out, id));
    }
}

/// The app's answer to `request`, sent as frames; an error when its body
/// failed midway (or the target was not a URI).
async fn answer(
    id: u32,
    request: frame::RequestFrame,
    app: Router,
    writer: &Writer,
) -> Result<(), ()> {
    let frame::RequestFrame {
        method,
        target,
        client,
        headers,
        body,
    } = request;
    let mut request = Request::new(Body::from(body));
    *request.method_mut() = method;
    *request.uri_mut() = target.parse().map_err(|_| ())?;
    *request.headers_mut() = headers;
    if let Some(client) = client {
        request.extensions_mut().insert(ConnectInfo(client));
    }
    let response = match app.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let (mut parts, mut body) = response.into_parts();
    for hop_by_hop in [header::CONNECTION, header::TRANSFER_ENCODING] {
        parts.headers.remove(hop_by_hop);
    }
    parts.headers.remove("keep-alive");
    // The head goes with the first piece of the body.
    let mut head = Some(parts);
    loop {
        let (piece, end) = match body.frame().await {
            None => (Bytes::new(), true),
            Some(Ok(piece)) => (
                piece.into_data().unwrap_or_default(),
                http_body::Body::is_end_stream(&body),
            ),
            Some(Err(_)) => return Err(()),
        };
        if piece.is_empty() && !end && head.is_none() {
            continue;
        }
        let mut rest = &piece[..];
        loop {
            let (chunk, after) = rest.split_at(rest.len().min(DATA_MAX));
            let last = end && after.is_empty();
            let sent = match head.take() {
                Some(parts) => {
                    writer
                        .push_with_room(|out| {
                            frame::put_head(out, id, parts.status, &parts.headers, chunk, last);
                        })
                        .await
                }
                None => {
                    writer
                        .push_with_room(|out| frame::put_data(out, id, chunk, last))
                        .await
                }
            };
            if !sent {
                return Err(());
            }
            rest = after;
            if rest.is_empty() {
                break;
            }
        }
        if end {
            return Ok(());
        }
    }
}
