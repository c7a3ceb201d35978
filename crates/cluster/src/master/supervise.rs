//! Supervision, in the vocabulary of OTP and systemd: start a worker per
//! slot, restart one that exits with exponential backoff (reset once a
//! worker has stayed up [`ClusterConfig::backoff_reset`]), replace every
//! worker one at a time (SIGUSR2, and SIGHUP without TLS), reload the
//! TLS certificate in place (SIGHUP with TLS), stop gracefully on SIGTERM.
//!
//! [`ClusterConfig::backoff_reset`]: crate::ClusterConfig::backoff_reset

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::table::{Table, Worker};
use super::{Master, spawn};
use crate::ClusterError;
use crate::control::{ControlChannel, Frame, MasterMessage, Side};
use crate::handoff::HandoffSender;
use crate::outbox::Outbox;
use crate::sid::InstanceId;

/// The first restart waits this long; each quick failure doubles it.
pub(crate) const BACKOFF_START: Duration = Duration::from_millis(100);
/// Restarts never wait longer than this.
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// How long a rolling restart waits for a new worker to be ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long an exited worker's last frames may take to be read before it
/// counts as gone (its end of the channel closed with it: this bounds only
/// a channel that some other process still holds).
const LAST_FRAMES_LIMIT: Duration = Duration::from_secs(1);

/// How long to wait before the `restarts`-th restart in a row.
pub(crate) fn backoff(restarts: u32) -> Duration {
    let doublings = restarts.saturating_sub(1).min(10);
    BACKOFF_START
        .saturating_mul(1 << doublings)
        .min(BACKOFF_MAX)
}

impl Master {
    /// Starts a worker in `slot` and watches it: its frames, its outbox,
    /// its exit.
    pub(super) fn launch(self: &Arc<Self>, slot: usize) -> Result<InstanceId, ClusterError> {
        let instance = self.next_instance();
        let spawned = spawn::spawn(&self.command, &self.config, self.peering.node, instance)
            .map_err(ClusterError::Spawn)?;
        let pid = spawned.child.id().unwrap_or(0);
        let (outbox, outbox_receiver) = Outbox::new();
        self.table().workers.insert(
            instance,
            Worker {
                slot,
                pid,
                handoff: Arc::new(HandoffSender::new(spawned.handoff)),
                control: outbox,
                ready: false,
                draining: false,
                sessions: 0,
                handed: VecDeque::new(),
                started: Instant::now(),
            },
        );
        tracing::info!(slot, %instance, pid, "worker started");
        let (sink, mut stream) = ControlChannel::new(spawned.control, Side::Master).split();
        let master = Arc::clone(self);
        let reader = tokio::spawn(async move {
            while let Some(frame) = stream.next().await {
                master.on_frame(instance, frame);
            }
        });
        // The writer ends when the worker leaves the table (the last
        // sender of its outbox is dropped) or its channel fails.
        tokio::spawn(outbox_receiver.write_to(sink, CancellationToken::new()));
        let master = Arc::clone(self);
        let mut child = spawned.child;
        tokio::spawn(async move {
            let status = child.wait().await;
            // What the worker wrote before it died (sessions it tracked or
            // persisted) is read before it counts as gone: a frame read
            // after would mark a dead worker's socket as connected.
            let _ = tokio::time::timeout(LAST_FRAMES_LIMIT, reader).await;
            master.on_exit(instance, status);
        });
        Ok(instance)
    }

    /// A worker exited: forget it, tell the others, restart its slot
    /// unless it was told to stop.
    fn on_exit(
        self: &Arc<Self>,
        instance: InstanceId,
        status: std::io::Result<std::process::ExitStatus>,
    ) {
        let Some(worker) = self.table().workers.remove(&instance) else {
            return;
        };
        self.changed.notify_waiters();
        self.stats.exited(&status);
        self.worker_gone(instance);
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
        let restarts = self
            .table()
            .record_restart(slot, worker.started.elapsed() >= self.config.backoff_reset);
        let delay = backoff(restarts);
        tracing::info!(
            slot,
            restarts,
            delay_ms = delay.as_millis() as u64,
            "restarting worker"
        );
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
    pub(super) async fn wait_for(
        &self,
        timeout: Duration,
        condition: impl Fn(&Table) -> bool,
    ) -> bool {
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

    /// Tells a worker to close its sessions and exit; it no longer takes
    /// new sessions.
    fn drain(worker: &mut Worker) {
        worker.draining = true;
        worker
            .control
            .send(Frame::control(&MasterMessage::Shutdown));
    }

    /// SIGHUP with TLS: the certificate files are read again, and no
    /// worker restarts; when they
    /// load, every running worker reads them too (new handshakes get the
    /// new certificate, connections already up keep theirs); when they do
    /// not, the old certificate stays and the error is logged.
    pub(super) fn reload_tls(&self) {
        let Some(tls) = &self.config.tls else {
            return;
        };
        match tls.files.load() {
            Ok(_) => {
                tracing::info!("TLS certificate reloaded");
                for worker in self.table().workers.values() {
                    worker
                        .control
                        .send(Frame::control(&MasterMessage::ReloadTls));
                }
            }
            Err(error) => tracing::error!(%error, "TLS certificate not reloaded"),
        }
    }

    /// Replaces every worker, one at a time: the new one must be ready
    /// before the old one drains, so some worker is always ready.
    pub(super) async fn rolling_restart(self: &Arc<Self>) {
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
                if let Some(worker) = self.table().workers.get_mut(&old) {
                    Self::drain(worker);
                }
            }
        }
        tracing::info!("rolling restart done");
    }

    /// Stops accepting, tells every worker to close its sessions and exit,
    /// and kills those still alive after the shutdown timeout.
    pub(super) async fn shutdown(self: &Arc<Self>) {
        self.stopping.cancel();
        for worker in self.table().workers.values_mut() {
            Self::drain(worker);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_100_ms_up_to_10_s() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(5), Duration::from_millis(1600));
        assert_eq!(backoff(8), Duration::from_secs(10));
        assert_eq!(backoff(u32::MAX), Duration::from_secs(10));
    }
}
