//! `hold`: C idle WebSocket sessions (connected to `/`) that only answer
//! pings; the server's resident memory is read before they open and once
//! they are all open, giving bytes per session; they are held for
//! `--duration` (or until SIGTERM), then closed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::client::{SocketClient, TransportKind, socket_part};
use crate::error::{ClientError, LoadgenError};
use crate::latency::LatencyRecorder;
use crate::packet::SocketPacket;
use crate::proctree::{process_tree, total_rss};
use crate::report::{Details, HoldDetails, Report};
use crate::scenario::{Context, close_all, join_within};
use crate::target::{RunOptions, validate_clients};

/// How long after the last session opened the memory is read (lets the
/// server finish the work each new session started).
const SETTLE: Duration = Duration::from_millis(500);

/// Whose memory is measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemorySource {
    /// Nobody's: no memory figures.
    None,
    /// These processes.
    Pids(Vec<u32>),
    /// This process (the master) and all its descendants, looked up at
    /// each reading.
    Tree(u32),
}

impl MemorySource {
    /// The processes to read now.
    fn pids(&self) -> Result<Vec<u32>, LoadgenError> {
        match self {
            MemorySource::None => Ok(Vec::new()),
            MemorySource::Pids(pids) => Ok(pids.clone()),
            MemorySource::Tree(root) => process_tree(*root),
        }
    }

    /// Their summed RSS; `None` when nobody is measured.
    fn rss(&self) -> Result<(Vec<u32>, Option<u64>), LoadgenError> {
        let pids = self.pids()?;
        if pids.is_empty() {
            return Ok((pids, None));
        }
        let rss = total_rss(&pids);
        Ok((pids, Some(rss)))
    }
}

/// Options of the `hold` scenario.
#[derive(Debug, Clone)]
pub struct HoldOptions {
    /// Sessions to open.
    pub clients: usize,
    /// Whose memory to read.
    pub memory: MemorySource,
}

/// Runs the `hold` scenario.
///
/// ```no_run
/// # async fn run() -> Result<(), iocluster_loadgen::LoadgenError> {
/// use std::time::Duration;
/// use iocluster_loadgen::{RunOptions, Target};
/// use iocluster_loadgen::scenario::hold::{run, HoldOptions, MemorySource};
/// let options = RunOptions::new(Target::parse("http://127.0.0.1:3000")?, Duration::from_secs(10));
/// let hold = HoldOptions { clients: 1000, memory: MemorySource::Tree(4242) };
/// let report = run(&options, &hold).await?;
/// println!("{:?}", report.details);
/// # Ok(()) }
/// ```
pub async fn run(options: &RunOptions, hold: &HoldOptions) -> Result<Report, LoadgenError> {
    validate_clients("--clients", hold.clients)?;
    let context = Context::new(options)?;
    let (_, rss_before) = hold.memory.rss()?;

    let open_latency = LatencyRecorder::new();
    let setup_started = Instant::now();
    // Each session answers its pings from the moment it is open: a ramp
    // may last longer than the server's ping interval + timeout.
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let open = context
        .connect_each(
            hold.clients,
            TransportKind::Websocket,
            &open_latency,
            |client| {
                tasks.spawn(idle(client, stop_rx.clone(), context.clone()));
            },
        )
        .await;
    let setup_took = setup_started.elapsed();
    let pings = Arc::new(AtomicU64::new(0));
    tokio::time::sleep(SETTLE).await;
    let (pids, rss_after) = hold.memory.rss()?;

    // The hold ends after `--duration`, or at SIGTERM: a driver running
    // several generators ends them together, each reporting as usual.
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                () = tokio::time::sleep(options.duration) => {}
                _ = terminate.recv() => {}
            }
        }
        Err(_) => tokio::time::sleep(options.duration).await,
    }
    let (_, rss_end) = hold.memory.rss()?;
    let _ = stop_tx.send(true);
    let limit = Instant::now() + options.timeout * 2;
    let still_open: Vec<SocketClient> = join_within(tasks, limit, &context.errors)
        .await
        .into_iter()
        .flatten()
        .map(|(client, answered)| {
            pings.fetch_add(answered, Ordering::Relaxed);
            client
        })
        .collect();
    let open_at_end = still_open.len();
    close_all(still_open, options.connect_concurrency).await;

    let bytes_per_session = match (rss_before, rss_after) {
        (Some(before), Some(after)) if open > 0 => {
            Some((after as f64 - before as f64) / open as f64)
        }
        _ => None,
    };
    Ok(Report::new(
        "hold",
        context.url(),
        options.sources,
        options.duration,
        setup_took,
        "sessions",
        open as u64,
        &open_latency,
        &context.errors,
        Details::Hold(HoldDetails {
            clients: hold.clients,
            open,
            open_at_end,
            pings_answered: pings.load(Ordering::Relaxed),
            pids,
            rss_before_bytes: rss_before,
            rss_after_bytes: rss_after,
            rss_end_bytes: rss_end,
            bytes_per_session,
        }),
    ))
}

/// One idle session: reads (answering pings, skipping events) until told
/// to stop; returns the client and the pings it answered, or `None` after
/// an error.
async fn idle(
    mut client: SocketClient,
    mut stop: watch::Receiver<bool>,
    context: Context,
) -> Option<(SocketClient, u64)> {
    let far = Instant::now() + Duration::from_secs(3600);
    loop {
        let message = tokio::select! {
            message = client.recv_until(far) => message,
            _ = stop.changed() => {
                let answered = client.pings_answered();
                return Some((client, answered));
            }
        };
        let outcome = match message {
            Ok(Some(message)) => match SocketPacket::parse(socket_part(&message)) {
                Ok(SocketPacket::Event { .. }) => Ok(()),
                Ok(SocketPacket::Disconnect { .. }) => {
                    Err(ClientError::Closed("the server disconnected the socket"))
                }
                Ok(_) => Err(ClientError::unexpected(&message)),
                Err(error) => Err(error),
            },
            Ok(None) => Ok(()),
            Err(error) => Err(error),
        };
        if let Err(error) = outcome {
            context.errors.record(&error);
            return None;
        }
    }
}
