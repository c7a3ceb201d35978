//! What the master tells a worker through its environment: the worker's
//! instance number, the descriptors of its two channels, its limits and the
//! engine options of the master's command line.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use crate::ClusterError;
use crate::config::{EngineOptions, SocketIoOptions};
use crate::sid::{InstanceId, NodeId};
use crate::tls::TlsFiles;

/// The variables the master sets for each worker it starts. Every name
/// starts with `IOCLUSTER_WORKER_`, a prefix no option of the `iocluster`
/// command line reads: a worker running the built-in app parses that
/// command line too, and would take an empty `IOCLUSTER_TLS_CERT` as an
/// option given without its value.
pub(crate) mod vars {
    pub(crate) const INSTANCE: &str = "IOCLUSTER_WORKER_INSTANCE";
    pub(crate) const HANDOFF_FD: &str = "IOCLUSTER_WORKER_HANDOFF_FD";
    pub(crate) const CONTROL_FD: &str = "IOCLUSTER_WORKER_CONTROL_FD";
    pub(crate) const MAX_HEAD: &str = "IOCLUSTER_WORKER_MAX_HEAD";
    pub(crate) const THREADS: &str = "IOCLUSTER_WORKER_THREADS";
    pub(crate) const ENGINE: &str = "IOCLUSTER_WORKER_ENGINE";
    pub(crate) const SOCKETIO: &str = "IOCLUSTER_WORKER_SOCKETIO";
    pub(crate) const NODE: &str = "IOCLUSTER_WORKER_NODE";
    pub(crate) const PEER_SECRET: &str = "IOCLUSTER_WORKER_PEER_SECRET";
    pub(crate) const TLS_CERT: &str = "IOCLUSTER_WORKER_TLS_CERT";
    pub(crate) const TLS_KEY: &str = "IOCLUSTER_WORKER_TLS_KEY";
}

/// What a worker process learns from its environment.
#[derive(Debug)]
pub(crate) struct WorkerEnv {
    pub(crate) instance: InstanceId,
    pub(crate) node: NodeId,
    /// The secret of the peer links, when this node has any.
    pub(crate) peer_secret: Option<String>,
    /// The certificate and key, when the public port speaks TLS.
    pub(crate) tls: Option<TlsFiles>,
    /// The handoff and control descriptors, until taken.
    channels: Option<(RawFd, RawFd)>,
    pub(crate) max_head: usize,
    threads: usize,
    pub(crate) engine: EngineOptions,
    pub(crate) socketio: SocketIoOptions,
}

impl WorkerEnv {
    /// The worker environment, when this process was started by a master.
    pub(crate) fn from_env() -> Option<Result<WorkerEnv, ClusterError>> {
        let instance = std::env::var(vars::INSTANCE).ok()?;
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
    pub(crate) fn runtime(&self) -> std::io::Result<tokio::runtime::Runtime> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(self.threads)
            .enable_all()
            .build()
    }

    /// Takes ownership of the two inherited channel descriptors, handoffs
    /// and control frames; none once taken.
    pub(crate) fn take_channels(&mut self) -> Option<(OwnedFd, OwnedFd)> {
        let (handoff, control) = self.channels.take()?;
        Some((inherited(handoff), inherited(control)))
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
        let engine = std::env::var(vars::ENGINE)
            .ok()
            .and_then(|v| serde_json::from_str(&v).ok())
            .ok_or_else(|| {
                ClusterError::Environment(format!("{} is missing or malformed", vars::ENGINE))
            })?;
        // Absent from a master older than the worker: the defaults.
        let socketio = match std::env::var(vars::SOCKETIO) {
            Ok(json) => serde_json::from_str(&json).map_err(|_| {
                ClusterError::Environment(format!("{} is malformed", vars::SOCKETIO))
            })?,
            Err(_) => SocketIoOptions::default(),
        };
        let fd = |name: &str| -> Result<RawFd, ClusterError> {
            RawFd::try_from(number(name)?)
                .map_err(|_| ClusterError::Environment(format!("{name} is not a descriptor")))
        };
        Ok(WorkerEnv {
            node: NodeId(u32::try_from(number(vars::NODE)?).map_err(|_| {
                ClusterError::Environment(format!("{} is not a node number", vars::NODE))
            })?),
            peer_secret: std::env::var(vars::PEER_SECRET)
                .ok()
                .filter(|s| !s.is_empty()),
            tls: match (
                std::env::var_os(vars::TLS_CERT).filter(|v| !v.is_empty()),
                std::env::var_os(vars::TLS_KEY).filter(|v| !v.is_empty()),
            ) {
                (Some(cert), Some(key)) => Some(TlsFiles {
                    cert: cert.into(),
                    key: key.into(),
                }),
                _ => None,
            },
            instance: InstanceId(instance.parse().map_err(|_| {
                ClusterError::Environment(format!("{} is not a number", vars::INSTANCE))
            })?),
            channels: Some((fd(vars::HANDOFF_FD)?, fd(vars::CONTROL_FD)?)),
            max_head: usize::try_from(number(vars::MAX_HEAD)?).map_err(|_| {
                ClusterError::Environment(format!("{} is too large", vars::MAX_HEAD))
            })?,
            threads: number(vars::THREADS).map_or(1, |n| usize::try_from(n).unwrap_or(1).max(1)),
            engine,
            socketio,
        })
    }
}

/// Takes ownership of an inherited descriptor.
fn inherited(fd: RawFd) -> OwnedFd {
    // SAFETY: the master passed this descriptor for this process alone,
    // nothing else in it uses the number, and `take_channels` gives each
    // out once (the environment is read once per process).
    unsafe { OwnedFd::from_raw_fd(fd) }
}
