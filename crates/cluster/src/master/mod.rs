//! The master: binds the port, routes each new connection to a worker by
//! its request head, hands the socket over, and supervises the workers.

mod admin;
mod recovery;
mod router;
mod spawn;
mod table;

pub use spawn::WorkerCommand;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::ClusterError;
use crate::balance::Balancer;
use crate::config::ClusterConfig;
use crate::control::{
    self, ControlChannel, FLAG_RECORD, Frame, MasterMessage, Side, TO_ALL, TO_MASTER, WorkerMessage,
};
use crate::handoff::{HandoffKind, HandoffSender};
use crate::sid::InstanceId;
use recovery::Recovery;
use table::{Table, Worker};

/// How many frames may wait to be written to one worker.
const WORKER_OUTBOX: usize = 65_536;

/// The first restart waits this long; each quick failure doubles it.
const BACKOFF_START: Duration = Duration::from_millis(100);
/// Restarts never wait longer than this.
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// A worker that lived this long resets its slot's backoff.
const STABLE_UPTIME: Duration = Duration::from_secs(30);
/// How long the master keeps a disconnected socket's state and the
/// broadcasts it may have missed (socket.io's default
/// maxDisconnectionDuration; workers check their own, shorter or equal).
const RECOVERY_MAX_AGE: Duration = Duration::from_secs(120);
/// The most broadcasts the master keeps for recovery.
const RECOVERY_MAX_PACKETS: usize = 10_000;
/// How long a rolling restart waits for a new worker to be ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) struct Master {
    config: ClusterConfig,
    command: WorkerCommand,
    table: Mutex<Table>,
    recovery: Mutex<Recovery>,
    balancer: Balancer,
    next_instance: AtomicU32,
    stopping: CancellationToken,
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

    /// Starts a worker in `slot` and watches it.
    fn launch(self: &Arc<Self>, slot: usize) -> Result<InstanceId, ClusterError> {
        let instance = self.next_instance();
        let spawned =
            spawn::spawn(&self.command, &self.config, instance).map_err(ClusterError::Spawn)?;
        let pid = spawned.child.id().unwrap_or(0);
        let (control_tx, mut control_rx) = mpsc::channel::<Frame>(WORKER_OUTBOX);
        self.table().workers.insert(
            instance,
            Worker {
                slot,
                pid,
                handoff: Arc::new(HandoffSender::new(spawned.handoff)),
                control: control_tx,
                ready: false,
                draining: false,
                sessions: 0,
                handed: VecDeque::new(),
                started: Instant::now(),
            },
        );
        tracing::info!(slot, %instance, pid, "worker started");
        let (mut sink, mut stream) = ControlChannel::new(spawned.control, Side::Master).split();
        let master = Arc::clone(self);
        tokio::spawn(async move {
            while let Some(frame) = stream.next().await {
                master.on_frame(instance, frame);
            }
        });
        tokio::spawn(async move {
            while let Some(frame) = control_rx.recv().await {
                if sink.send(frame).await.is_err() {
                    break;
                }
            }
        });
        let master = Arc::clone(self);
        let mut child = spawned.child;
        tokio::spawn(async move {
            let status = child.wait().await;
            master.on_exit(instance, status);
        });
        Ok(instance)
    }

    /// Queues a frame for one worker; a worker too slow to take it loses it.
    fn send_to(worker: &Worker, frame: Frame) {
        if let Err(error) = worker.control.try_send(frame) {
            tracing::warn!(pid = worker.pid, %error, "frame to a worker dropped");
        }
    }

    /// Joins two workers with a Unix stream for a proxied request: one end
    /// to the session's owner to serve, the other to the requester.
    fn connect(
        &self,
        requester: InstanceId,
        request: u64,
        owner: InstanceId,
        remote: Option<String>,
    ) {
        let (owner_handoff, requester_handoff) = {
            let table = self.table();
            (
                table
                    .workers
                    .get(&owner)
                    .filter(|w| w.ready)
                    .map(|w| Arc::clone(&w.handoff)),
                table
                    .workers
                    .get(&requester)
                    .map(|w| Arc::clone(&w.handoff)),
            )
        };
        let Some(requester_handoff) = requester_handoff else {
            return;
        };
        let fail = move |master: &Master| {
            if let Some(worker) = master.table().workers.get(&requester) {
                Self::send_to(
                    worker,
                    Frame::control(&MasterMessage::ConnectFailed { request }),
                );
            }
        };
        let (Some(owner_handoff), Ok((served, client))) =
            (owner_handoff, std::os::unix::net::UnixStream::pair())
        else {
            return fail(self);
        };
        let remote = remote.unwrap_or_default();
        let stopping = self.stopping.clone();
        tokio::spawn(async move {
            let delivered = owner_handoff
                .send(&served, HandoffKind::ProxyServer, remote.as_bytes())
                .await
                .is_ok()
                && requester_handoff
                    .send(&client, HandoffKind::ProxyClient, &request.to_be_bytes())
                    .await
                    .is_ok();
            if !delivered && !stopping.is_cancelled() {
                tracing::debug!(request, "proxy stream not delivered");
            }
        });
    }

    /// Tells every worker which workers are alive.
    fn announce_peers(&self) {
        let table = self.table();
        let instances: Vec<u32> = table
            .workers
            .iter()
            .filter(|(_, w)| w.ready)
            .map(|(i, _)| i.0)
            .collect();
        let frame = Frame::control(&MasterMessage::Peers { instances });
        for worker in table.workers.values() {
            Self::send_to(worker, frame.clone());
        }
    }

    fn on_frame(&self, source: InstanceId, frame: Frame) {
        match frame {
            Frame::Control(json) => {
                if let Some(message) = control::parse::<WorkerMessage>(&json) {
                    self.on_message(source, message);
                }
            }
            Frame::Relay {
                peer,
                flags,
                payload,
            } => {
                if flags & FLAG_RECORD != 0 {
                    self.recovery().record(payload.clone());
                }
                let forward = Frame::Relay {
                    peer: source.0,
                    flags: 0,
                    payload,
                };
                let table = self.table();
                match peer {
                    TO_MASTER => {}
                    TO_ALL => {
                        for (instance, worker) in &table.workers {
                            if *instance != source && worker.ready {
                                Self::send_to(worker, forward.clone());
                            }
                        }
                    }
                    target => {
                        if let Some(worker) = table.workers.get(&InstanceId(target)) {
                            Self::send_to(worker, forward);
                        }
                    }
                }
            }
            Frame::Restored { .. } => {}
        }
    }

    fn on_message(&self, instance: InstanceId, message: WorkerMessage) {
        match message {
            WorkerMessage::TrackSession { nsp, record } => {
                return self.recovery().track(instance, nsp, record);
            }
            WorkerMessage::PersistSession { nsp, record } => {
                return self.recovery().persist(nsp, record);
            }
            WorkerMessage::ForgetSession { pid } => return self.recovery().forget(&pid),
            WorkerMessage::Connect {
                request,
                instance: target,
                remote,
            } => {
                self.connect(instance, request, InstanceId(target), remote);
                return;
            }
            WorkerMessage::Restore {
                request,
                nsp,
                pid,
                offset,
            } => {
                let (record, packets) = self.recovery().restore(&nsp, &pid, &offset);
                if let Some(worker) = self.table().workers.get(&instance) {
                    Self::send_to(
                        worker,
                        Frame::Restored {
                            request,
                            record,
                            packets,
                        },
                    );
                }
                return;
            }
            _ => {}
        }
        let mut table = self.table();
        let Some(worker) = table.workers.get_mut(&instance) else {
            return;
        };
        match message {
            WorkerMessage::Ready => {
                worker.ready = true;
                tracing::info!(%instance, pid = worker.pid, "worker ready");
                drop(table);
                self.announce_peers();
                self.changed.notify_waiters();
                return;
            }
            WorkerMessage::SessionOpened { .. } => {
                worker.sessions += 1;
                worker.handed.pop_front();
            }
            WorkerMessage::SessionClosed { .. } => {
                worker.sessions = worker.sessions.saturating_sub(1);
            }
            _ => {}
        }
        drop(table);
        self.changed.notify_waiters();
    }

    fn on_exit(
        self: &Arc<Self>,
        instance: InstanceId,
        status: std::io::Result<std::process::ExitStatus>,
    ) {
        let Some(worker) = self.table().workers.remove(&instance) else {
            return;
        };
        self.changed.notify_waiters();
        self.recovery().worker_gone(instance);
        {
            let gone = Frame::control(&MasterMessage::WorkerGone {
                instance: instance.0,
            });
            for other in self.table().workers.values() {
                Self::send_to(other, gone.clone());
            }
        }
        self.announce_peers();
        match &status {
            Ok(status) => {
                tracing::warn!(slot = worker.slot, %instance, pid = worker.pid, %status, "worker exited")
            }
            Err(error) => {
                tracing::warn!(slot = worker.slot, %instance, pid = worker.pid, %error, "worker lost")
            }
        }
        if self.stopping.is_cancelled() || worker.draining {
            return;
        }
        let slot = worker.slot;
        let failures = {
            let mut table = self.table();
            let restarts = table.restarts.entry(slot).or_insert(0);
            *restarts += 1;
            *restarts
        };
        let quick = worker.started.elapsed() < STABLE_UPTIME;
        let delay = if quick {
            BACKOFF_START
                .saturating_mul(1 << (failures.min(16) - 1).min(10))
                .min(BACKOFF_MAX)
        } else {
            BACKOFF_START
        };
        let master = Arc::clone(self);
        tokio::spawn(async move {
            tokio::select! {
                _ = master.stopping.cancelled() => {}
                _ = tokio::time::sleep(delay) => {
                    if master.table().active_in_slot(slot).is_none() {
                        if let Err(error) = master.launch(slot) {
                            tracing::error!(slot, %error, "worker restart failed");
                        }
                    }
                }
            }
        });
    }

    /// Waits until `condition` holds on the table, or the timeout.
    async fn wait_for(&self, timeout: Duration, condition: impl Fn(&Table) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if condition(&self.table()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return condition(&self.table());
            }
        }
    }

    /// Replaces every worker, one at a time: the new one must be ready
    /// before the old one drains, so some worker is always ready.
    async fn rolling_restart(self: &Arc<Self>) {
        tracing::info!("rolling restart");
        for slot in 0..self.config.workers {
            let old = self.table().active_in_slot(slot);
            let new = match self.launch(slot) {
                Ok(new) => new,
                Err(error) => {
                    tracing::error!(slot, %error, "rolling restart stopped: spawn failed");
                    return;
                }
            };
            let ready = self
                .wait_for(READY_TIMEOUT, |table| {
                    table.workers.get(&new).is_some_and(|w| w.ready)
                })
                .await;
            if !ready {
                tracing::error!(slot, "rolling restart stopped: new worker not ready");
                return;
            }
            if let Some(old) = old {
                let mut table = self.table();
                if let Some(worker) = table.workers.get_mut(&old) {
                    worker.draining = true;
                    Self::send_to(worker, Frame::control(&MasterMessage::Shutdown));
                }
            }
        }
        tracing::info!("rolling restart done");
    }

    /// Stops accepting, tells every worker to close its sessions and exit,
    /// and kills those still alive after the shutdown timeout.
    async fn shutdown(self: &Arc<Self>) {
        self.stopping.cancel();
        for worker in self.table().workers.values_mut() {
            worker.draining = true;
            Self::send_to(worker, Frame::control(&MasterMessage::Shutdown));
        }
        let done = self
            .wait_for(self.config.shutdown_timeout, |table| {
                table.workers.is_empty()
            })
            .await;
        if !done {
            for worker in self.table().workers.values() {
                tracing::warn!(pid = worker.pid, "worker did not exit in time: killing it");
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(worker.pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

/// Runs a master until SIGTERM or SIGINT: binds, starts the workers, routes
/// connections, restarts workers that exit, rolls them on SIGHUP.
pub async fn run_master(config: ClusterConfig, command: WorkerCommand) -> Result<(), ClusterError> {
    let listener = router::bind(config.listen, config.backlog).map_err(ClusterError::Bind)?;
    let local = listener.local_addr().map_err(ClusterError::Bind)?;
    let first_instance = {
        let mut bytes = [0u8; 4];
        getrandom::fill(&mut bytes).map_err(|e| ClusterError::Environment(e.to_string()))?;
        u32::from_le_bytes(bytes) & 0x7fff_ffff
    };
    let master = Arc::new(Master {
        config,
        command,
        table: Mutex::new(Table::default()),
        recovery: Mutex::new(Recovery::new(RECOVERY_MAX_AGE, RECOVERY_MAX_PACKETS)),
        balancer: Balancer::default(),
        next_instance: AtomicU32::new(first_instance),
        stopping: CancellationToken::new(),
        changed: Notify::new(),
        started: Instant::now(),
    });
    let mut terminate = signal(SignalKind::terminate()).map_err(ClusterError::Signal)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(ClusterError::Signal)?;
    let mut hangup = signal(SignalKind::hangup()).map_err(ClusterError::Signal)?;
    for slot in 0..master.config.workers {
        master.launch(slot)?;
    }
    if let Some(addr) = master.config.admin {
        admin::start(Arc::clone(&master), addr).await;
    }
    println!(
        "iocluster listening on http://{local} with {} workers",
        master.config.workers
    );
    tracing::info!(%local, workers = master.config.workers, balance = ?master.config.balance, "master listening");
    let accept = tokio::spawn(router::accept_loop(Arc::clone(&master), listener));
    loop {
        tokio::select! {
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            _ = hangup.recv() => {
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
