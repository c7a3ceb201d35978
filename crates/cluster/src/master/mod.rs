//! The master: binds the port, routes each new connection to a worker by
//! its request head, hands the socket over, and supervises the workers.
//!
//! - [`router`]: accept, read the head, route by sid or balance, hand off;
//! - [`tls_port`]: the public port when it speaks TLS (nothing read: hand
//!   off by the client's address);
//! - [`supervise`]: start workers, restart those that exit (with backoff),
//!   rolling restarts, graceful shutdown;
//! - [`inbox`]: what a worker's frames ask of the master;
//! - [`relay`]: the cluster adapter's frames forwarded between workers,
//!   membership news, recovery answers;
//! - [`join`]: streams between two workers for proxied requests;
//! - [`peering`]: this node among its peers: announced, found, the peer
//!   port;
//! - [`reports`]: the workers' counters, gathered on demand;
//! - [`stats`]: the master's own counters, and `/metrics`;
//! - [`recovery`], [`table`], [`admin`], [`spawn`]: the state they share.

mod admin;
mod inbox;
mod join;
mod peering;
mod recovery;
mod relay;
mod reports;
mod router;
mod spawn;
mod stats;
mod supervise;
mod table;
mod tls_port;

pub use spawn::WorkerCommand;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use iocluster_engineio::Cors;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::ClusterError;
use crate::balance::Balancer;
use crate::config::ClusterConfig;
use crate::peer::auth::PeerSecret;
use crate::peer::{ConnectDirectory, PeerDirectory, StaticPeers};
use crate::sid::{InstanceId, NodeId};
use peering::Peering;
use recovery::Recovery;
use reports::Reports;
use stats::MasterStats;
use table::Table;

/// The most broadcasts the master keeps for recovery.
const RECOVERY_MAX_PACKETS: usize = 10_000;
/// The most bytes of broadcasts the master keeps for recovery; past it,
/// the oldest go first (a client that missed one of them is not recovered).
const RECOVERY_MAX_BYTES: usize = 64 * 1024 * 1024;

/// The master's state, shared by its tasks.
pub(crate) struct Master {
    config: ClusterConfig,
    /// The CORS policy of the workers' engine, for the master's own errors.
    cors: Option<Cors>,
    command: WorkerCommand,
    table: Mutex<Table>,
    recovery: Mutex<Recovery>,
    reports: Reports,
    stats: MasterStats,
    peering: Arc<Peering>,
    balancer: Balancer,
    next_instance: AtomicU32,
    stopping: CancellationToken,
    /// Woken whenever the table changes (a worker ready, gone, a session).
    changed: Notify,
    started: Instant,
}

impl Master {
    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn recovery(&self) -> MutexGuard<'_, Recovery> {
        self.recovery.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn next_instance(&self) -> InstanceId {
        InstanceId(self.next_instance.fetch_add(1, Ordering::Relaxed))
    }

    /// Reads a request head from `stream` within the configured size and
    /// time.
    async fn read_head<S: tokio::io::AsyncRead + Unpin>(
        &self,
        stream: &mut S,
    ) -> Result<crate::head::RequestHead, crate::head::HeadError> {
        crate::head::read_head(stream, self.config.max_head, self.config.head_timeout).await
    }
}

/// How long the master keeps a disconnected socket's state and the
/// broadcasts it may have missed: `--recovery`'s duration, else
/// socket.io's default `maxDisconnectionDuration` (workers built with a
/// recovery of their own check their own, shorter or equal).
fn recovery_max_age(config: &ClusterConfig) -> Duration {
    let recovery = config.socketio.recovery.clone().unwrap_or_default();
    Duration::from_millis(recovery.max_disconnection_ms)
}

/// Four random bytes from the operating system.
fn random_u32() -> Result<u32, ClusterError> {
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes).map_err(|e| ClusterError::Environment(e.to_string()))?;
    Ok(u32::from_le_bytes(bytes))
}

/// This node among its peers: its number, the secret of its links, and
/// the directory that finds the others (the layer above's registry, else
/// the static list, else none).
async fn peering_of(
    config: &ClusterConfig,
    directory: Option<ConnectDirectory>,
) -> Result<Peering, ClusterError> {
    let peers = &config.peers;
    let node = match peers.node_id {
        Some(id) => NodeId(id),
        None => NodeId(random_u32()?),
    };
    let secret = peers
        .secret
        .as_deref()
        .map(|s| PeerSecret::new(s.as_bytes()));
    if secret.is_none() && (peers.listen.is_some() || !peers.peers.is_empty()) {
        return Err(ClusterError::Peer(
            "a peer link needs a secret (--peer-secret)".to_owned(),
        ));
    }
    let directory: Option<Arc<dyn PeerDirectory>> = match directory {
        Some(connect) => Some(connect().await.map_err(ClusterError::Peer)?),
        None if !peers.peers.is_empty() => {
            Some(Arc::new(StaticPeers::new(peers.peers.iter().copied())))
        }
        None => None,
    };
    Ok(Peering::new(node, secret, directory))
}

/// Runs a master until SIGTERM or SIGINT: binds, starts the workers, routes
/// connections, restarts workers that exit, rolls them on SIGUSR2 (and on
/// SIGHUP without TLS; with TLS, SIGHUP reloads the certificate).
pub(crate) async fn run_master(
    config: ClusterConfig,
    command: WorkerCommand,
    directory: Option<ConnectDirectory>,
) -> Result<(), ClusterError> {
    let listener = router::bind(config.listen, config.backlog).map_err(ClusterError::Bind)?;
    let local = listener.local_addr().map_err(ClusterError::Bind)?;
    let admin = match config.admin {
        Some(addr) if !addr.ip().is_loopback() && !config.admin_public => {
            return Err(ClusterError::AdminNotLoopback(addr));
        }
        Some(addr) => Some(admin::bind(addr).await?),
        None => None,
    };
    // A certificate that does not load stops the master now, not each
    // worker at its start.
    if let Some(tls) = &config.tls {
        tls.files.load().map_err(ClusterError::Tls)?;
    }
    let first_instance = random_u32()? & 0x7fff_ffff;
    let peering = Arc::new(peering_of(&config, directory).await?);
    let peer_listener = match config.peers.listen {
        Some(addr) => Some(peering::bind(addr).await?),
        None => None,
    };
    let recovery_max_age = recovery_max_age(&config);
    let master = Arc::new(Master {
        cors: config.engine.cors(),
        config,
        command,
        table: Mutex::new(Table::default()),
        recovery: Mutex::new(Recovery::new(
            recovery_max_age,
            RECOVERY_MAX_PACKETS,
            RECOVERY_MAX_BYTES,
        )),
        reports: Reports::default(),
        stats: MasterStats::default(),
        peering,
        balancer: Balancer::default(),
        next_instance: AtomicU32::new(first_instance),
        stopping: CancellationToken::new(),
        changed: Notify::new(),
        started: Instant::now(),
    });
    let mut terminate = signal(SignalKind::terminate()).map_err(ClusterError::Signal)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(ClusterError::Signal)?;
    let mut hangup = signal(SignalKind::hangup()).map_err(ClusterError::Signal)?;
    let mut roll = signal(SignalKind::user_defined2()).map_err(ClusterError::Signal)?;
    for slot in 0..master.config.workers {
        master.launch(slot)?;
    }
    if let Some(admin) = admin {
        admin::serve(Arc::clone(&master), admin);
    }
    let scheme = if master.config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    println!(
        "iocluster listening on {scheme}://{local} with {} workers",
        master.config.workers
    );
    tracing::info!(%local, workers = master.config.workers, balance = %master.config.balance, "master listening");
    if let Some(peer_listener) = peer_listener {
        let advertise = master
            .config
            .peers
            .advertise
            .or(peer_listener.local_addr().ok());
        if let Ok(local) = peer_listener.local_addr() {
            println!("iocluster node {} peers on {local}", master.peering.node);
        }
        tokio::spawn(peering::serve_peers(Arc::clone(&master), peer_listener));
        if let Some(advertise) = advertise {
            tokio::spawn(Arc::clone(&master.peering).announce(advertise, master.stopping.clone()));
        }
    }
    let accept = tokio::spawn(router::accept_loop(Arc::clone(&master), listener));
    loop {
        tokio::select! {
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            // SIGHUP reloads: a TLS node its certificate, in place
            // (renewals are frequent and must drop no one); a node without
            // TLS has nothing to reload in place and rolls its workers.
            _ = hangup.recv() => {
                if master.config.tls.is_some() {
                    master.reload_tls();
                } else {
                    let master = Arc::clone(&master);
                    tokio::spawn(async move { master.rolling_restart().await });
                }
            }
            // SIGUSR2 rolls the workers on any node (a new build of the app).
            _ = roll.recv() => {
                let master = Arc::clone(&master);
                tokio::spawn(async move { master.rolling_restart().await });
            }
        }
    }
    tracing::info!("shutting down");
    master.shutdown().await;
    accept.abort();
    Ok(())
}
