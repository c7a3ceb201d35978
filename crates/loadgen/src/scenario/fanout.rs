//! `fanout`: C WebSocket receivers (spread over the workers by the
//! master), and one more client emitting `broadcast` events whose payload
//! carries its send time; the built-in app's `broadcast(payload)` emits
//! `broadcast` to every client. Deliveries per second and delivery latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::client::{SocketClient, TransportKind, socket_part};
use crate::error::{ClientError, LoadgenError};
use crate::latency::LatencyRecorder;
use crate::packet::{SocketPacket, event_args, event_with_ack};
use crate::report::{Details, FanoutDetails, Report};
use crate::scenario::{Context, close_all, join_within};
use crate::target::{RunOptions, validate_clients};

/// The event the built-in app broadcasts.
const EVENT: &str = "broadcast";

/// How long deliveries may trail the last broadcast at most.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// Options of the `fanout` scenario.
#[derive(Debug, Clone)]
pub struct FanoutOptions {
    /// Receiving clients.
    pub clients: usize,
    /// Broadcasts per second; 0: each as soon as the previous is acked.
    pub rate: f64,
}

/// The payload of a broadcast: when it was sent (µs since the run's
/// epoch; sender and receivers share this process's monotonic clock) and
/// its number (`n`, not read back).
#[derive(Debug, Deserialize)]
struct Stamp {
    t: u64,
}

/// The stamp in the first argument of a broadcast; later arguments (the
/// recovery offset the server appends when connection state recovery is
/// on) are ignored.
fn first_stamp(args: &str) -> Option<Stamp> {
    serde_json::Deserializer::from_str(args)
        .into_iter::<Stamp>()
        .next()?
        .ok()
}

/// What the receivers share.
#[derive(Debug, Clone)]
struct Receivers {
    epoch: Instant,
    deliveries: Arc<AtomicU64>,
    alive: Arc<AtomicU64>,
    latency: LatencyRecorder,
}

/// Runs the `fanout` scenario.
///
/// ```no_run
/// # async fn run() -> Result<(), iocluster_loadgen::LoadgenError> {
/// use std::time::Duration;
/// use iocluster_loadgen::{RunOptions, Target};
/// use iocluster_loadgen::scenario::fanout::{run, FanoutOptions};
/// let options = RunOptions::new(Target::parse("http://127.0.0.1:3000")?, Duration::from_secs(5));
/// let report = run(&options, &FanoutOptions { clients: 1000, rate: 50.0 }).await?;
/// println!("{} deliveries/s", report.per_second);
/// # Ok(()) }
/// ```
pub async fn run(options: &RunOptions, fanout: &FanoutOptions) -> Result<Report, LoadgenError> {
    validate_clients("--clients", fanout.clients)?;
    if !(fanout.rate >= 0.0 && fanout.rate <= 100_000.0) {
        return Err(LoadgenError::BadOption("--rate must be 0..=100000".into()));
    }
    let context = Context::new(options)?;
    let open = LatencyRecorder::new();
    let clients = context
        .connect_clients(fanout.clients, TransportKind::Websocket, &open)
        .await;
    let connected = clients.len();
    let mut sender = context
        .connect_clients(1, TransportKind::Websocket, &open)
        .await
        .pop();

    let receivers = Receivers {
        epoch: Instant::now(),
        deliveries: Arc::new(AtomicU64::new(0)),
        alive: Arc::new(AtomicU64::new(connected as u64)),
        latency: LatencyRecorder::new(),
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    for client in clients {
        tasks.spawn(receive(
            client,
            receivers.clone(),
            stop_rx.clone(),
            context.clone(),
        ));
    }

    let started = Instant::now();
    let ack_latency = LatencyRecorder::new();
    let mut broadcasts = 0;
    if let Some(sender) = sender.as_mut() {
        let deadline = started + options.duration;
        match send_broadcasts(sender, fanout.rate, deadline, &receivers, &ack_latency).await {
            Ok(sent) => broadcasts = sent,
            Err((sent, error)) => {
                broadcasts = sent;
                context.errors.record(&error);
            }
        }
    }
    // Let deliveries in flight arrive, then stop the receivers.
    let drain_until = Instant::now() + DRAIN_LIMIT.min(options.timeout);
    while Instant::now() < drain_until {
        let expected = broadcasts * receivers.alive.load(Ordering::Relaxed);
        if receivers.deliveries.load(Ordering::Relaxed) >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed();
    let _ = stop_tx.send(true);
    let limit = Instant::now() + options.timeout * 2;
    let still_open = join_within(tasks, limit, &context.errors).await;
    let open_clients: Vec<SocketClient> = still_open.into_iter().flatten().collect();
    close_all(open_clients, options.connect_concurrency).await;
    if let Some(sender) = sender {
        let _ = sender.close().await;
    }

    let deliveries = receivers.deliveries.load(Ordering::Relaxed);
    let expected = broadcasts * receivers.alive.load(Ordering::Relaxed);
    Ok(Report::new(
        "fanout",
        context.url(),
        options.sources,
        options.duration,
        elapsed,
        "deliveries",
        deliveries,
        &receivers.latency,
        &context.errors,
        Details::Fanout(FanoutDetails {
            clients: fanout.clients,
            connected,
            rate: fanout.rate,
            broadcasts,
            deliveries_expected: expected,
            deliveries_missing: expected.saturating_sub(deliveries),
            ack_latency: ack_latency.percentiles(),
        }),
    ))
}

/// Emits broadcasts until `deadline`, each acked before the next, paced at
/// `rate` per second (0: unpaced). Returns how many were acked (and the
/// error that stopped it, if any).
async fn send_broadcasts(
    sender: &mut SocketClient,
    rate: f64,
    deadline: Instant,
    receivers: &Receivers,
    ack_latency: &LatencyRecorder,
) -> Result<u64, (u64, ClientError)> {
    let started = Instant::now();
    let mut sent = 0u64;
    while Instant::now() < deadline {
        if rate > 0.0 {
            let slot = started + Duration::from_secs_f64(sent as f64 / rate);
            if slot >= deadline {
                break;
            }
            tokio::time::sleep_until(slot).await;
        }
        let id = sender.next_ack_id();
        let now = Instant::now();
        let t = now.duration_since(receivers.epoch).as_micros();
        let packet = event_with_ack(id, EVENT, &format!("{{\"t\":{t},\"n\":{sent}}}"));
        sender.send(packet).await.map_err(|e| (sent, e))?;
        sender.wait_ack(id).await.map_err(|e| (sent, e))?;
        ack_latency.record(now.elapsed());
        sent += 1;
    }
    Ok(sent)
}

/// One receiver: counts broadcasts and their latency until told to stop;
/// returns its client to be closed, or `None` after an error.
async fn receive(
    mut client: SocketClient,
    receivers: Receivers,
    mut stop: watch::Receiver<bool>,
    context: Context,
) -> Option<SocketClient> {
    // Far enough: the stop signal ends the wait.
    let far = Instant::now() + Duration::from_secs(3600);
    loop {
        let message = tokio::select! {
            message = client.recv_until(far) => message,
            _ = stop.changed() => return Some(client),
        };
        let outcome = match message {
            Ok(Some(message)) => delivered(&message, &receivers),
            Ok(None) => Ok(()),
            Err(error) => Err(error),
        };
        if let Err(error) = outcome {
            receivers.alive.fetch_sub(1, Ordering::Relaxed);
            context.errors.record(&error);
            return None;
        }
    }
}

/// Counts `message` if it is a broadcast; other events (`welcome`) are
/// skipped.
fn delivered(message: &str, receivers: &Receivers) -> Result<(), ClientError> {
    match SocketPacket::parse(socket_part(message))? {
        SocketPacket::Event { data, .. } => {
            if let Some(args) = event_args(data, EVENT) {
                let stamp = first_stamp(args).ok_or_else(|| ClientError::unexpected(message))?;
                let now = receivers.epoch.elapsed().as_micros();
                let micros = u64::try_from(now)
                    .unwrap_or(u64::MAX)
                    .saturating_sub(stamp.t);
                receivers.latency.record(Duration::from_micros(micros));
                receivers.deliveries.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }
        SocketPacket::Disconnect { .. } => {
            Err(ClientError::Closed("the server disconnected the socket"))
        }
        _ => Err(ClientError::unexpected(message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_is_read_from_the_first_argument_only() {
        let with_offset = r#"{"n":0,"t":1405},"1306919421-1628""#;
        assert_eq!(first_stamp(with_offset).map(|s| s.t), Some(1405));
        assert_eq!(first_stamp(r#"{"t":7}"#).map(|s| s.t), Some(7));
        assert!(first_stamp(r#""text""#).is_none());
        assert!(first_stamp("").is_none());
    }
}
