//! The worker side: receive connections from the master, serve them with
//! the user's app, report sessions, shut down when told.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use iocluster_engineio::{Engine, EngineConfig, SessionObserver, Sid};
use iocluster_socketio::{Server, ServerConfig};
use tokio::net::{UnixDatagram, UnixStream};
use tokio::sync::mpsc;

use crate::ClusterError;
use crate::adapter::ClusterAdapterFactory;
use crate::adapter::relay::{OUTBOX_FRAMES, Relay};
use crate::config::EngineOptions;
use crate::control::{self, ControlChannel, Frame, MasterMessage, Side, WorkerMessage};
use crate::handoff::{Handoff, HandoffKind, HandoffReceiver};
use crate::proxy::{Proxy, forward_foreign_sessions};
use crate::sid::{ClusterSid, InstanceId};
use bytes::Bytes;

/// Environment variables through which the master configures a worker.
pub(crate) mod env {
    pub const INSTANCE: &str = "IOCLUSTER_INSTANCE";
    pub const HANDOFF_FD: &str = "IOCLUSTER_HANDOFF_FD";
    pub const CONTROL_FD: &str = "IOCLUSTER_CONTROL_FD";
    pub const MAX_HEAD: &str = "IOCLUSTER_MAX_HEAD";
    pub const THREADS: &str = "IOCLUSTER_WORKER_THREADS";
    pub const ENGINE: &str = "IOCLUSTER_ENGINE";
    pub const REDIS: &str = "IOCLUSTER_WORKER_REDIS";
    pub const REDIS_SHARDED: &str = "IOCLUSTER_WORKER_REDIS_SHARDED";
}

/// What a worker process learns from its environment.
#[derive(Debug, Clone)]
pub struct WorkerEnv {
    instance: InstanceId,
    handoff_fd: RawFd,
    control_fd: RawFd,
    max_head: usize,
    threads: usize,
    engine: EngineOptions,
    redis: Option<String>,
    /// The sharded adapter's subscription mode; none: the classic adapter.
    redis_sharded: Option<iocluster_redis::SubscriptionMode>,
}

impl WorkerEnv {
    /// The worker environment, when this process was started by a master.
    pub fn from_env() -> Option<Result<WorkerEnv, ClusterError>> {
        let instance = std::env::var(env::INSTANCE).ok()?;
        Some(Self::parse(&instance))
    }

    /// The runtime this worker runs in, with the threads its master gave
    /// it (one with a worker per CPU, the default). Even with one thread
    /// it is tokio's multi-threaded scheduler: its LIFO slot runs the task
    /// woken last first, so the ack of a broadcast goes out before the
    /// thousand deliveries it queued, the next broadcast comes in while
    /// they wait, and each connection then gets several frames per write
    /// (fan-out measured about 1.5x the deliveries per CPU second of the
    /// single-threaded scheduler, which runs tasks strictly in turn).
    pub fn runtime(&self) -> std::io::Result<tokio::runtime::Runtime> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(self.threads)
            .enable_all()
            .build()
    }

    fn parse(instance: &str) -> Result<WorkerEnv, ClusterError> {
        let number = |name: &str| -> Result<u64, ClusterError> {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| {
                    ClusterError::Environment(format!("{name} is missing or not a number"))
                })
        };
        let engine = std::env::var(env::ENGINE)
            .ok()
            .and_then(|v| serde_json::from_str(&v).ok())
            .ok_or_else(|| {
                ClusterError::Environment(format!("{} is missing or malformed", env::ENGINE))
            })?;
        Ok(WorkerEnv {
            instance: InstanceId(instance.parse().map_err(|_| {
                ClusterError::Environment(format!("{} is not a number", env::INSTANCE))
            })?),
            handoff_fd: number(env::HANDOFF_FD)? as RawFd,
            control_fd: number(env::CONTROL_FD)? as RawFd,
            max_head: number(env::MAX_HEAD)? as usize,
            threads: number(env::THREADS).map_or(1, |n| n.max(1) as usize),
            engine,
            redis: std::env::var(env::REDIS).ok().filter(|url| !url.is_empty()),
            redis_sharded: match std::env::var(env::REDIS_SHARDED) {
                Ok(mode) if !mode.is_empty() => {
                    Some(mode.parse().map_err(ClusterError::Environment)?)
                }
                _ => None,
            },
        })
    }
}

/// The Redis adapter of every namespace of a worker started with `--redis`.
#[derive(Clone)]
enum RedisFactory {
    /// @socket.io/redis-adapter's `createAdapter`.
    Classic(iocluster_redis::RedisAdapterFactory),
    /// `createShardedAdapter` (`--redis-sharded`).
    Sharded(iocluster_redis::ShardedRedisAdapterFactory),
}

impl RedisFactory {
    async fn connect(
        url: &str,
        sharded: Option<iocluster_redis::SubscriptionMode>,
    ) -> Result<RedisFactory, iocluster_redis::Error> {
        Ok(match sharded {
            None => RedisFactory::Classic(
                iocluster_redis::RedisAdapterFactory::connect(url, Default::default()).await?,
            ),
            Some(mode) => {
                let config =
                    iocluster_redis::ShardedRedisAdapterConfig::default().subscription_mode(mode);
                RedisFactory::Sharded(
                    iocluster_redis::ShardedRedisAdapterFactory::connect(url, config).await?,
                )
            }
        })
    }
}

/// Reports sessions to the master.
struct ReportSessions(Arc<Relay>);

impl SessionObserver for ReportSessions {
    fn opened(&self, sid: &Sid) {
        self.0.control(&WorkerMessage::SessionOpened {
            sid: sid.to_string(),
        });
    }
    fn closed(&self, sid: &Sid) {
        self.0.control(&WorkerMessage::SessionClosed {
            sid: sid.to_string(),
        });
    }
}

/// What a worker's app is built with: the cluster's engine options, session
/// ids that name this worker, and session reports to the master.
pub struct WorkerContext {
    instance: InstanceId,
    engine: EngineOptions,
    relay: Arc<Relay>,
    redis: Option<RedisFactory>,
    servers: Mutex<Vec<Server>>,
    engines: Mutex<Vec<Engine>>,
}

impl std::fmt::Debug for WorkerContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerContext")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl WorkerContext {
    /// This worker's instance number.
    pub fn instance(&self) -> InstanceId {
        self.instance
    }

    /// The engine options given on the master's command line.
    pub fn engine_options(&self) -> &EngineOptions {
        &self.engine
    }

    /// An engine configuration for this worker: the cluster's options, its
    /// session ids and its session reports. Register an engine you build
    /// from it with [`WorkerContext::register_engine`].
    pub fn engine_config(&self) -> EngineConfig {
        self.engine
            .to_engine_config()
            .sid_generator(ClusterSid::new(self.instance))
            .session_observer(Arc::new(ReportSessions(Arc::clone(&self.relay))))
    }

    /// A Socket.IO configuration with [`WorkerContext::engine_config`].
    pub fn socketio_config(&self) -> ServerConfig {
        ServerConfig::default().engine(self.engine_config())
    }

    /// A Socket.IO server for this worker, closed cleanly at shutdown. Its
    /// namespaces are joined to every other worker's by the cluster adapter
    /// (through the master), or, when the master runs with `--redis`, by
    /// the Redis adapter (every worker a peer of the Redis fleet).
    pub fn socketio(&self, config: ServerConfig) -> Server {
        let server = match &self.redis {
            Some(RedisFactory::Classic(redis)) => Server::with_adapter(config, redis.clone()),
            Some(RedisFactory::Sharded(redis)) => Server::with_adapter(config, redis.clone()),
            None => {
                Server::with_adapter(config, ClusterAdapterFactory::new(Arc::clone(&self.relay)))
            }
        };
        self.servers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(server.clone());
        server
    }

    /// Registers a bare engine to close at shutdown.
    pub fn register_engine(&self, engine: Engine) {
        self.engines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(engine);
    }

    fn session_count(&self) -> usize {
        let servers: usize = self
            .servers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|s| s.engine().session_count())
            .sum();
        let engines: usize = self
            .engines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|e| e.session_count())
            .sum();
        servers + engines
    }

    fn close_all(&self) {
        for server in self
            .servers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            server.close();
        }
        for engine in self
            .engines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            engine.close_all();
        }
    }
}

/// Takes ownership of an inherited descriptor.
fn inherited(fd: RawFd) -> OwnedFd {
    // SAFETY: the master passed this descriptor for this process alone and
    // nothing else in it uses the number.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Runs a worker until the master tells it to stop (or goes away).
pub async fn run_worker(
    env: WorkerEnv,
    app: impl FnOnce(&WorkerContext) -> Router,
) -> Result<(), ClusterError> {
    let handoff = std::os::unix::net::UnixDatagram::from(inherited(env.handoff_fd));
    handoff.set_nonblocking(true)?;
    let handoff = HandoffReceiver::new(UnixDatagram::from_std(handoff)?, env.max_head);
    let control = std::os::unix::net::UnixStream::from(inherited(env.control_fd));
    control.set_nonblocking(true)?;
    let (mut sink, mut stream) =
        ControlChannel::new(UnixStream::from_std(control)?, Side::Worker).split();

    let (outbox_tx, mut outbox) = mpsc::channel(OUTBOX_FRAMES);
    let relay = Relay::new(env.instance.0, outbox_tx);
    let redis = match &env.redis {
        Some(url) => Some(
            RedisFactory::connect(url, env.redis_sharded)
                .await
                .map_err(|error| {
                    ClusterError::Environment(format!("cannot connect to Redis at {url}: {error}"))
                })?,
        ),
        None => None,
    };
    let context = WorkerContext {
        instance: env.instance,
        engine: env.engine,
        relay: Arc::clone(&relay),
        redis,
        servers: Mutex::new(Vec::new()),
        engines: Mutex::new(Vec::new()),
    };
    let proxy = Proxy::new(env.instance, Arc::clone(&relay), context.engine.cors());
    let router = app(&context).layer(axum::middleware::from_fn_with_state(
        Arc::clone(&proxy),
        forward_foreign_sessions,
    ));
    let stop_writer = tokio_util::sync::CancellationToken::new();
    let writer_stop = stop_writer.clone();
    let writer = tokio::spawn(async move {
        loop {
            let frame = tokio::select! {
                frame = outbox.recv() => frame,
                _ = writer_stop.cancelled() => {
                    // Flush what is queued (last session reports), then end.
                    while let Ok(frame) = outbox.try_recv() {
                        if sink.send(frame).await.is_err() {
                            break;
                        }
                    }
                    return;
                }
            };
            let Some(frame) = frame else { return };
            if sink.send(frame).await.is_err() {
                return;
            }
        }
    });
    relay.control(&WorkerMessage::Ready);
    tracing::info!(instance = %env.instance, pid = std::process::id(), "worker ready");

    // Draining: connections keep being served (a poll must still get its
    // close packet, a handshake that raced the master's draining flag must
    // still complete); sessions are closed after a short grace; the worker
    // exits once none is left, or at the drain deadline.
    let mut drain: Option<Drain> = None;
    let mut master_gone = false;
    loop {
        let close_at = drain.as_ref().map(|d| d.close_at);
        let closed = drain.as_ref().is_some_and(|d| d.closed);
        tokio::select! {
            received = handoff.recv(), if !master_gone => match received {
                Ok(handoff) => serve_handoff(handoff, &router, &proxy),
                Err(error) => {
                    tracing::warn!(%error, "handoff channel closed: shutting down");
                    master_gone = true;
                    drain.get_or_insert_with(Drain::start);
                }
            },
            frame = stream.next(), if !master_gone => match frame {
                Some(Frame::Control(json)) => match control::parse::<MasterMessage>(&json) {
                    Some(MasterMessage::Shutdown) => {
                        tracing::info!(instance = %env.instance, "shutdown requested");
                        drain.get_or_insert_with(Drain::start);
                    }
                    Some(MasterMessage::Peers { instances }) => relay.set_peers(instances),
                    Some(MasterMessage::WorkerGone { instance }) => relay.gone(instance),
                    Some(MasterMessage::ConnectFailed { request }) => proxy.connected(request, None),
                    None => {}
                },
                Some(frame) => relay.on_frame(frame),
                None => {
                    tracing::warn!("master gone: shutting down");
                    master_gone = true;
                    drain.get_or_insert_with(Drain::start);
                }
            },
            _ = tokio::time::sleep_until(close_at.unwrap_or_else(far_future)), if close_at.is_some() && !closed => {
                context.close_all();
                if let Some(drain) = drain.as_mut() {
                    drain.closed = true;
                }
            },
            _ = tokio::time::sleep(DRAIN_CHECK), if closed => {
                let deadline = drain.as_ref().map(|d| d.deadline).unwrap_or_else(tokio::time::Instant::now);
                if context.session_count() == 0 || tokio::time::Instant::now() >= deadline {
                    break;
                }
            },
        }
    }
    drop(context);
    stop_writer.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
    Ok(())
}

/// Grace before a draining worker closes its sessions.
const DRAIN_GRACE: Duration = Duration::from_millis(200);
/// The longest a draining worker waits for its sessions to close.
const DRAIN_MAX: Duration = Duration::from_secs(5);
/// How often a draining worker checks whether its sessions are gone.
const DRAIN_CHECK: Duration = Duration::from_millis(20);

/// A drain under way.
struct Drain {
    close_at: tokio::time::Instant,
    deadline: tokio::time::Instant,
    closed: bool,
}

impl Drain {
    fn start() -> Drain {
        let now = tokio::time::Instant::now();
        Drain {
            close_at: now + DRAIN_GRACE,
            deadline: now + DRAIN_MAX,
            closed: false,
        }
    }
}

fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(86_400)
}

/// Serves a handed-over connection: a client's TCP socket, or a stream from
/// a worker proxying a request for one of our sessions; or completes our
/// own proxy request.
fn serve_handoff(handoff: Handoff, router: &Router, proxy: &Proxy) {
    match handoff.kind {
        HandoffKind::Tcp => {
            let std_stream = std::net::TcpStream::from(handoff.fd);
            if std_stream.set_nonblocking(true).is_err() {
                return;
            }
            let Ok(stream) = tokio::net::TcpStream::from_std(std_stream) else {
                return;
            };
            let router = router.clone();
            tokio::spawn(async move {
                if let Err(error) =
                    iocluster_engineio::serve_connection(stream, handoff.bytes, router).await
                {
                    tracing::debug!(%error, "connection ended with an error");
                }
            });
        }
        HandoffKind::ProxyServer => {
            let Some(stream) = unix_stream(handoff.fd) else {
                return;
            };
            let remote = std::str::from_utf8(&handoff.bytes)
                .ok()
                .and_then(|r| r.parse().ok());
            let router = router.clone();
            tokio::spawn(async move {
                if let Err(error) =
                    iocluster_engineio::serve_io(stream, remote, Bytes::new(), router).await
                {
                    tracing::debug!(%error, "proxied connection ended with an error");
                }
            });
        }
        HandoffKind::ProxyClient => {
            let Ok(request) = <[u8; 8]>::try_from(&handoff.bytes[..]) else {
                return;
            };
            proxy.connected(u64::from_be_bytes(request), unix_stream(handoff.fd));
        }
    }
}

fn unix_stream(fd: OwnedFd) -> Option<UnixStream> {
    let stream = std::os::unix::net::UnixStream::from(fd);
    stream.set_nonblocking(true).ok()?;
    UnixStream::from_std(stream).ok()
}
