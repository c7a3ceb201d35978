//! The iocluster cluster: a master process that binds the port, reads the
//! first request head of each connection, and hands the socket (with the
//! bytes read) to the worker owning the session the request names, or to one
//! chosen by the balancing method; and the worker runtime that serves those
//! sockets with axum and the iocluster Socket.IO server.
//!
//! The master never parses Socket.IO: it reads a `sid` query parameter and
//! the worker instance its first characters encode ([`InstanceId`]).
//!
//! Workers join their namespaces through the master with the cluster
//! adapter, or through any adapter the layer above connects
//! ([`ClusterBuilder::adapter`]; the `iocluster` facade wires Redis there).
//!
//! ```no_run
//! use iocluster_cluster::Cluster;
//!
//! fn main() -> Result<(), iocluster_cluster::ClusterError> {
//!     Cluster::builder().workers(4).build().run(|worker| {
//!         let io = worker.socketio(worker.socketio_config());
//!         io.on_connection(|socket| {
//!             socket.on("echo", |_s, args, ack| {
//!                 if let Some(ack) = ack {
//!                     let _ = ack.send(args);
//!                 }
//!             });
//!         });
//!         io.router()
//!     })
//! }
//! ```
#![deny(missing_docs)]

mod adapter;
mod balance;
mod config;
mod control;
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod fuzz;
mod handoff;
mod head;
mod master;
mod metrics;
mod outbox;
pub mod peer;
mod report;
mod sid;
mod tls;
mod worker;

pub use config::{
    Balance, ClusterConfig, EngineOptions, PeerConfig, RecoveryOptions, SocketIoOptions, TlsConfig,
};
pub use master::WorkerCommand;
pub use metrics::{Labels, Metric, Values, label};
pub use report::CounterSource;
pub use sid::{InstanceId, NodeId};
pub use tls::TlsFiles;
pub use worker::{AdapterConnect, WorkerContext};

use std::ffi::OsString;

use axum::Router;
use worker::env::WorkerEnv;

/// Why the cluster could not run.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The listening socket could not be bound.
    #[error("cannot listen: {0}")]
    Bind(std::io::Error),
    /// The admin endpoint could not be bound.
    #[error("cannot start the admin endpoint on {addr}: {error}")]
    Admin {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why it failed.
        error: std::io::Error,
    },
    /// The admin endpoint was asked for on a non-loopback address without
    /// `admin_public`.
    #[error(
        "the admin endpoint {0} is not on loopback: it has no authentication; use a loopback address, or allow it explicitly (--admin-public) on a private network"
    )]
    AdminNotLoopback(std::net::SocketAddr),
    /// The TLS certificate or key could not be loaded.
    #[error("TLS: {0}")]
    Tls(String),
    /// The peer link could not be set up.
    #[error("peer link: {0}")]
    Peer(String),
    /// A worker process could not be started.
    #[error("cannot start a worker: {0}")]
    Spawn(std::io::Error),
    /// Signal handlers could not be installed.
    #[error("cannot handle signals: {0}")]
    Signal(std::io::Error),
    /// A worker's environment is incomplete, or its adapter could not
    /// connect.
    #[error("bad worker environment: {0}")]
    Environment(String),
    /// Any other I/O failure.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A cluster to run: master options, how workers are started, and which
/// adapter joins their namespaces.
#[derive(Clone, Default)]
pub struct Cluster {
    config: ClusterConfig,
    command: Option<WorkerCommand>,
    worker_env: Vec<(OsString, OsString)>,
    worker: worker::WorkerOptions,
    directory: Option<peer::ConnectDirectory>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("config", &self.config)
            .field("command", &self.command)
            .field("worker_env", &self.worker_env)
            .field("worker", &self.worker)
            .field("directory", &self.directory.as_ref().map(|_| "custom"))
            .finish()
    }
}

/// Builds a [`Cluster`].
#[derive(Debug, Clone, Default)]
pub struct ClusterBuilder {
    cluster: Cluster,
}

impl ClusterBuilder {
    /// The number of workers (default: the number of CPUs).
    pub fn workers(mut self, workers: usize) -> Self {
        self.cluster.config.workers = workers.max(1);
        self
    }
    /// The balancing method (default least-connection).
    pub fn balance(mut self, balance: Balance) -> Self {
        self.cluster.config.balance = balance;
        self
    }
    /// The listening address (default 127.0.0.1:3000).
    pub fn listen(mut self, addr: std::net::SocketAddr) -> Self {
        self.cluster.config.listen = addr;
        self
    }
    /// Every master option at once.
    pub fn config(mut self, config: ClusterConfig) -> Self {
        self.cluster.config = config;
        self
    }
    /// Runs this program as the workers instead of the current executable.
    pub fn worker_command(mut self, command: WorkerCommand) -> Self {
        self.cluster.command = Some(command);
        self
    }
    /// Sets an environment variable for every worker the master starts
    /// (how the layer above passes its own settings to its workers).
    pub fn worker_env(mut self, name: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.cluster.worker_env.push((name.into(), value.into()));
        self
    }
    /// Joins the workers' namespaces with the adapter `connect` gives (run
    /// in each worker once its runtime runs) instead of the cluster
    /// adapter; `connect` may still answer `Ok(None)` for the cluster
    /// adapter. An error stops the worker (and the master restarts it).
    pub fn adapter(mut self, connect: AdapterConnect) -> Self {
        self.cluster.worker.adapter = Some(connect);
        self
    }
    /// Finds the other nodes of the fleet through the directory `connect`
    /// gives (run in the master once its runtime runs): a registry such as
    /// Redis, where this node also announces itself. Without one, a static
    /// list (`PeerConfig::peers`) or none.
    pub fn peer_directory(mut self, connect: peer::ConnectDirectory) -> Self {
        self.cluster.directory = Some(connect);
        self
    }
    /// Adds counters of the layer above to what each worker reports (in
    /// `/status`, by name).
    pub fn counters(mut self, source: CounterSource) -> Self {
        self.cluster.worker.counters.push(source);
        self
    }
    /// The cluster.
    pub fn build(self) -> Cluster {
        self.cluster
    }
}

impl Cluster {
    /// A builder with the defaults.
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder::default()
    }

    /// Runs this process as what it is: in a process started by a master,
    /// a worker serving `app`; otherwise the master, which re-executes this
    /// binary as its workers (no `fork` after a runtime exists). Blocks
    /// until shutdown.
    pub fn run(self, app: impl FnOnce(&WorkerContext) -> Router) -> Result<(), ClusterError> {
        if let Some(worker) = self.run_as_worker(app) {
            return worker;
        }
        let mut command = match self.command {
            Some(command) => command,
            None => WorkerCommand::current_exe()?,
        };
        command.env.extend(self.worker_env);
        // One thread: the master accepts, reads heads and passes
        // descriptors; more threads would only compete with the workers for
        // the cores.
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(master::run_master(self.config, command, self.directory))
    }

    /// Runs a worker serving `app` when this process was started by a
    /// master (blocking until it stops); returns `None` otherwise. For
    /// worker programs given to `iocluster -- ./my-worker`.
    pub fn run_as_worker(
        &self,
        app: impl FnOnce(&WorkerContext) -> Router,
    ) -> Option<Result<(), ClusterError>> {
        let env = match WorkerEnv::from_env()? {
            Ok(env) => env,
            Err(error) => return Some(Err(error)),
        };
        Some(match env.runtime() {
            Ok(runtime) => runtime.block_on(worker::run_worker(env, self.worker.clone(), app)),
            Err(error) => Err(error.into()),
        })
    }
}

/// Runs a worker with the cluster adapter when this process was started by
/// a master; returns `None` otherwise. See [`Cluster::run_as_worker`].
pub fn run_as_worker(
    app: impl FnOnce(&WorkerContext) -> Router,
) -> Option<Result<(), ClusterError>> {
    Cluster::default().run_as_worker(app)
}
