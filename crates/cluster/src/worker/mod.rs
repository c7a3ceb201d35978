//! The worker side: receive connections from the master, serve them with
//! the user's app, report sessions, drain and exit when told.
//!
//! - [`env`]: what the master passes in the environment;
//! - [`link`]: the control channel to the master ([`link::MasterLink`]);
//! - [`context`]: what the app is built with ([`WorkerContext`]);
//! - [`serve`]: what is done with each handed-over descriptor;
//! - [`proxy`]: requests for another worker's session (on a kept-alive
//!   connection, or of another node);
//! - [`mux`]: links to the workers of other nodes (requests as frames,
//!   tunnels for upgrades and large bodies);
//! - [`peers`]: dialing another node's peer port, authenticated;
//! - [`front`]: the layer before the app (`/health` on the TLS port, a
//!   peer's client address, forwarding);
//! - this file: the run loop, serving → draining → closed.

mod context;
pub(crate) mod env;
mod exchange;
mod front;
pub(crate) mod link;
mod mux;
mod peers;
mod proxy;
mod report;
mod serve;

pub use context::WorkerContext;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use iocluster_engineio::ConnectionLimits;
use iocluster_socketio::adapter::AdapterFactory;
use tokio::net::{UnixDatagram, UnixStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::ClusterError;
use crate::adapter::ClusterAdapterFactory;
use crate::adapter::relay::Relay;
use crate::control::{ControlChannel, ControlStream, Frame, Side};
use crate::handoff::HandoffReceiver;
use crate::outbox::Outbox;
use crate::peer::auth::PeerSecret;
use crate::report::CounterSource;
use crate::tls::Acceptor;
use env::WorkerEnv;
use front::Front;
use link::{MasterLink, Order};
use peers::PeerDialer;
use proxy::Proxy;

/// Grace before a draining worker closes its sessions: a poll under way
/// still gets its answer, a handshake that raced the master's draining
/// flag still completes.
const DRAIN_GRACE: Duration = Duration::from_millis(200);
/// The longest a draining worker waits for its sessions to close.
const DRAIN_MAX: Duration = Duration::from_secs(5);
/// How often a worker whose sessions are closing checks whether they are
/// gone.
const DRAIN_CHECK: Duration = Duration::from_millis(20);
/// How long a leaving worker may take to write its last frames.
const LAST_FRAMES: Duration = Duration::from_secs(1);

/// Connects the adapter of a worker's namespaces once the worker's runtime
/// runs (the Redis adapter connects to Redis, say); `Ok(None)`: the cluster
/// adapter, through the master. Given to [`crate::ClusterBuilder::adapter`].
pub type AdapterConnect = Arc<
    dyn Fn() -> iocluster_socketio::adapter::BoxFuture<
            'static,
            Result<Option<Arc<dyn AdapterFactory>>, String>,
        > + Send
        + Sync,
>;

/// What the layer above gives every worker: the adapter to connect, and
/// counters to report.
#[derive(Clone, Default)]
pub(crate) struct WorkerOptions {
    pub(crate) adapter: Option<AdapterConnect>,
    pub(crate) counters: Vec<CounterSource>,
}

impl std::fmt::Debug for WorkerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerOptions")
            .field("adapter", &self.adapter.as_ref().map(|_| "custom"))
            .field("counters", &self.counters.len())
            .finish()
    }
}

/// Where a worker is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Serving what the master hands over.
    Serving,
    /// Told to stop, or the master is gone: still serving (a poll must get
    /// its close packet), sessions closed at `close_at`.
    Draining {
        close_at: Instant,
        deadline: Instant,
    },
    /// Sessions closed: exits once none is left (looked at `check_at`,
    /// then every `DRAIN_CHECK`), or at `deadline`. The next look is kept
    /// in the state, not counted from each wake-up: frames arriving more
    /// often than `DRAIN_CHECK` (a status poll asks every worker for its
    /// counters) must not put it off for ever.
    Closed {
        check_at: Instant,
        deadline: Instant,
    },
}

impl State {
    /// The state after an order to stop: a serving worker starts draining;
    /// one already draining or closed goes on as it was.
    fn stop(self) -> State {
        match self {
            State::Serving => {
                let now = Instant::now();
                State::Draining {
                    close_at: now + DRAIN_GRACE,
                    deadline: now + DRAIN_MAX,
                }
            }
            other => other,
        }
    }

    /// When the run loop must next look at the state.
    fn wake_at(self) -> Option<Instant> {
        match self {
            State::Serving => None,
            State::Draining { close_at, .. } => Some(close_at),
            State::Closed { check_at, .. } => Some(check_at),
        }
    }
}

/// What woke the run loop.
enum Event {
    /// The handoff channel closed (the task serving it ended).
    HandoffsClosed(std::io::Error),
    Frame(Option<Frame>),
    Timer,
}

/// Runs a worker until the master tells it to stop (or goes away): serves
/// the app built by `app`, with the adapter `options` connects (the cluster
/// adapter when none).
pub(crate) async fn run_worker(
    mut env: WorkerEnv,
    options: WorkerOptions,
    app: impl FnOnce(&WorkerContext) -> Router,
) -> Result<(), ClusterError> {
    let (handoff_fd, control_fd) = env
        .take_channels()
        .ok_or_else(|| ClusterError::Environment("worker channels already taken".to_owned()))?;
    let handoff = std::os::unix::net::UnixDatagram::from(handoff_fd);
    handoff.set_nonblocking(true)?;
    let handoff = HandoffReceiver::new(UnixDatagram::from_std(handoff)?, env.max_head);
    let control = std::os::unix::net::UnixStream::from(control_fd);
    control.set_nonblocking(true)?;
    let (sink, stream) = ControlChannel::new(UnixStream::from_std(control)?, Side::Worker).split();

    let (outbox, outbox_receiver) = Outbox::new();
    let stop_writer = CancellationToken::new();
    let writer = tokio::spawn(outbox_receiver.write_to(sink, stop_writer.clone()));
    let link = MasterLink::new(env.node, env.instance, outbox);
    let adapter = match &options.adapter {
        Some(connect) => connect().await.map_err(ClusterError::Environment)?,
        None => None,
    };
    let adapter = adapter.unwrap_or_else(|| {
        let relay = Relay::new(env.instance.0, link.outbox().clone());
        link.attach(Arc::clone(&relay));
        Arc::new(ClusterAdapterFactory::new(relay))
    });
    let cors = env.engine.cors();
    let limits = ConnectionLimits::for_engine(&env.engine.to_engine_config());
    let context = WorkerContext::new(
        env.engine,
        env.socketio,
        Arc::clone(&link),
        adapter,
        options.counters,
    );
    let peer_secret = env
        .peer_secret
        .as_deref()
        .map(|s| PeerSecret::new(s.as_bytes()));
    let proxy = Proxy::new(
        Arc::clone(&link),
        PeerDialer::new(peer_secret),
        cors,
        limits.write_stall,
    );
    let tls = match env.tls.clone() {
        Some(files) => Some(Arc::new(
            Acceptor::new(files).map_err(ClusterError::Environment)?,
        )),
        None => None,
    };
    // The app as clients reach it, and as other nodes do (who say who the
    // client is).
    let app = app(&context);
    let routers = serve::Routers {
        peer: app.clone().layer(Front::peer(Arc::clone(&proxy))),
        public: app.layer(Front::public(proxy)),
        tls,
    };
    link.report_ready();
    tracing::info!(instance = %env.instance, pid = std::process::id(), "worker ready");

    // The channels from the master, until it goes away. Handoffs are
    // received and served by a task of the runtime, so that a new
    // connection starts on the thread that serves it (received here, each
    // one cost a wake-up of that thread); the control frames are applied
    // here, beside the connections (a broadcast's deliveries run in
    // parallel with the writes they wake: fan-out measured ~10 % more than
    // with this loop on the runtime's thread).
    let routers = Arc::new(routers);
    let mut handoffs = Some(tokio::spawn(serve_handoffs(
        handoff,
        Arc::clone(&routers),
        limits,
        Arc::clone(&link),
    )));
    let mut frames = Some(stream);
    let mut state = State::Serving;
    loop {
        let wake_at = state.wake_at();
        let event = tokio::select! {
            ended = next_handoffs_end(handoffs.as_mut()) => Event::HandoffsClosed(ended),
            frame = next_frame(frames.as_mut()) => Event::Frame(frame),
            _ = tokio::time::sleep_until(wake_at.unwrap_or_else(Instant::now)), if wake_at.is_some() => Event::Timer,
        };
        match event {
            Event::HandoffsClosed(error) => {
                tracing::warn!(%error, "handoff channel closed: shutting down");
                stop_handoffs(&mut handoffs);
                frames = None;
                state = state.stop();
            }
            Event::Frame(Some(frame)) => match link.on_frame(frame) {
                Some(Order::Shutdown) => {
                    tracing::info!(instance = %env.instance, "shutdown requested");
                    state = state.stop();
                }
                Some(Order::Report(request)) => link.report(request, context.report()),
                Some(Order::ReloadTls) => {
                    if let Some(acceptor) = &routers.tls {
                        match acceptor.reload() {
                            Ok(()) => tracing::info!("TLS certificate reloaded"),
                            Err(error) => {
                                tracing::error!(%error, "TLS certificate not reloaded: keeping the old one")
                            }
                        }
                    }
                }
                None => {}
            },
            Event::Frame(None) => {
                tracing::warn!("master gone: shutting down");
                stop_handoffs(&mut handoffs);
                frames = None;
                state = state.stop();
            }
            Event::Timer => match state {
                State::Serving => {}
                State::Draining { deadline, .. } => {
                    context.close_all();
                    state = State::Closed {
                        check_at: Instant::now() + DRAIN_CHECK,
                        deadline,
                    };
                }
                State::Closed { deadline, .. } => {
                    let now = Instant::now();
                    if context.session_count() == 0 || now >= deadline {
                        break;
                    }
                    state = State::Closed {
                        check_at: now + DRAIN_CHECK,
                        deadline,
                    };
                }
            },
        }
    }
    drop(context);
    stop_writer.cancel();
    let _ = tokio::time::timeout(LAST_FRAMES, writer).await;
    Ok(())
}

/// Receives the master's handoffs and serves each, until the channel
/// fails: why it did.
async fn serve_handoffs(
    handoffs: HandoffReceiver,
    routers: Arc<serve::Routers>,
    limits: ConnectionLimits,
    link: Arc<MasterLink>,
) -> std::io::Error {
    loop {
        match handoffs.recv().await {
            Ok(handoff) => serve::serve_handoff(handoff, &routers, limits, &link),
            Err(error) => return error,
        }
    }
}

/// Why the handoff task ended; never, once it was stopped.
async fn next_handoffs_end(task: Option<&mut JoinHandle<std::io::Error>>) -> std::io::Error {
    match task {
        Some(task) => match task.await {
            Ok(error) => error,
            Err(join) => std::io::Error::other(join.to_string()),
        },
        None => std::future::pending().await,
    }
}

/// Stops taking handoffs (connections handed over already go on).
fn stop_handoffs(task: &mut Option<JoinHandle<std::io::Error>>) {
    if let Some(task) = task.take() {
        task.abort();
    }
}

/// The next control frame; never, once the master is gone.
async fn next_frame(frames: Option<&mut ControlStream>) -> Option<Frame> {
    match frames {
        Some(frames) => frames.next().await,
        None => std::future::pending().await,
    }
}
