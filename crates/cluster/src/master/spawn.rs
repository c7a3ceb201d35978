//! Starting a worker process: the same binary (or the user's worker
//! command) with two inherited socketpair ends and its options in the
//! environment.

use std::ffi::OsString;
use std::os::fd::AsRawFd;

use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use nix::sys::signal::Signal;

use crate::config::ClusterConfig;
use crate::sid::{InstanceId, NodeId};
use crate::worker::env::vars;

/// The program a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerCommand {
    /// The executable.
    pub program: OsString,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Environment variables set for it, besides the master's own
    /// `IOCLUSTER_*` variables and the inherited environment.
    pub env: Vec<(OsString, OsString)>,
}

impl WorkerCommand {
    /// This very executable with the same arguments: it will see the worker
    /// environment and run as a worker.
    pub fn current_exe() -> std::io::Result<WorkerCommand> {
        Ok(WorkerCommand {
            program: std::env::current_exe()?.into_os_string(),
            args: std::env::args_os().skip(1).collect(),
            env: Vec::new(),
        })
    }
}

/// A started worker process and the master's ends of its channels.
pub(crate) struct Spawned {
    pub(crate) child: tokio::process::Child,
    pub(crate) handoff: tokio::net::UnixDatagram,
    pub(crate) control: tokio::net::UnixStream,
}

/// Starts a worker process.
pub(crate) fn spawn(
    command: &WorkerCommand,
    config: &ClusterConfig,
    node: NodeId,
    instance: InstanceId,
) -> std::io::Result<Spawned> {
    let (handoff_master, handoff_child) = std::os::unix::net::UnixDatagram::pair()?;
    let (control_master, control_child) = std::os::unix::net::UnixStream::pair()?;
    let handoff_fd = handoff_child.as_raw_fd();
    let control_fd = control_child.as_raw_fd();
    let engine = serde_json::to_string(&config.engine).map_err(std::io::Error::other)?;
    let socketio = serde_json::to_string(&config.socketio).map_err(std::io::Error::other)?;
    let mut cmd = tokio::process::Command::new(&command.program);
    cmd.args(&command.args)
        .envs(command.env.iter().map(|(name, value)| (name, value)))
        .env(vars::INSTANCE, instance.0.to_string())
        .env(vars::NODE, node.0.to_string())
        .env(
            vars::PEER_SECRET,
            config.peers.secret.as_deref().unwrap_or_default(),
        )
        .env(vars::HANDOFF_FD, handoff_fd.to_string())
        .env(vars::CONTROL_FD, control_fd.to_string())
        .env(vars::MAX_HEAD, config.max_head.to_string())
        .env(vars::THREADS, config.threads_per_worker().to_string())
        .env(vars::ENGINE, engine)
        .env(vars::SOCKETIO, socketio)
        .env(
            vars::TLS_CERT,
            config
                .tls
                .as_ref()
                .map(|t| t.files.cert.as_os_str())
                .unwrap_or_default(),
        )
        .env(
            vars::TLS_KEY,
            config
                .tls
                .as_ref()
                .map(|t| t.files.key.as_os_str())
                .unwrap_or_default(),
        )
        .stdin(std::process::Stdio::null());
    // SAFETY: the closure runs between fork and exec and only makes
    // async-signal-safe system calls (fcntl, prctl).
    unsafe {
        cmd.pre_exec(move || {
            for fd in [handoff_fd, control_fd] {
                let borrowed = std::os::fd::BorrowedFd::borrow_raw(fd);
                fcntl(borrowed, FcntlArg::F_SETFD(FdFlag::empty()))
                    .map_err(std::io::Error::from)?;
            }
            // The worker dies with the master.
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    drop(handoff_child);
    drop(control_child);
    handoff_master.set_nonblocking(true)?;
    control_master.set_nonblocking(true)?;
    Ok(Spawned {
        child,
        handoff: tokio::net::UnixDatagram::from_std(handoff_master)?,
        control: tokio::net::UnixStream::from_std(control_master)?,
    })
}
