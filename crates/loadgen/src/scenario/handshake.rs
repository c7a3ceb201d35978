//! `handshake`: whole sessions, one after another on each of C concurrent
//! lanes, for `--duration`: sessions per second and open latency.
//!
//! - `browser`: as socket.io-client in a browser: polling handshake, POST
//!   `40`, GET until the CONNECT, then the upgrade (WebSocket with the sid,
//!   `2probe`/`3probe`, `5`), then close (`1`).
//! - `websocket`: WebSocket from the start, `40`, CONNECT, close.
//! - `polling`: handshake, `40`, CONNECT and close, all over polling; the
//!   close as socket.io-client's (POST `41`, then POST `1`, while a GET is
//!   pending), each answer awaited and checked.
//!
//! A session counts once its close is answered; a close answered wrongly
//! is a protocol error. How long the close took is reported apart.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::client::{SocketClient, Transport, TransportKind};
use crate::error::{ClientError, LoadgenError};
use crate::latency::LatencyRecorder;
use crate::polling::PollingTransport;
use crate::report::{Details, HandshakeDetails, Report};
use crate::scenario::{Context, ERROR_BACKOFF, join_within};
use crate::target::{RunOptions, validate_clients};

/// How a session is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HandshakeMode {
    /// Polling, then upgraded to WebSocket (what browsers do).
    Browser,
    /// WebSocket only.
    Websocket,
    /// Polling only.
    Polling,
}

impl HandshakeMode {
    fn name(self) -> &'static str {
        match self {
            HandshakeMode::Browser => "browser",
            HandshakeMode::Websocket => "websocket",
            HandshakeMode::Polling => "polling",
        }
    }
}

/// Options of the `handshake` scenario.
#[derive(Debug, Clone)]
pub struct HandshakeOptions {
    /// How sessions are opened.
    pub mode: HandshakeMode,
    /// Sessions in flight at once.
    pub concurrency: usize,
}

/// Latencies of one session.
struct SessionTimes {
    /// To the CONNECT: what `socket.on("connect")` sees.
    connected: Duration,
    /// Browser mode: to the upgrade done.
    upgraded: Option<Duration>,
    /// The close, from its first request to its last answer.
    closed: Duration,
}

/// Runs the `handshake` scenario.
///
/// ```no_run
/// # async fn run() -> Result<(), iocluster_loadgen::LoadgenError> {
/// use std::time::Duration;
/// use iocluster_loadgen::{RunOptions, Target};
/// use iocluster_loadgen::scenario::handshake::{run, HandshakeMode, HandshakeOptions};
/// let options = RunOptions::new(Target::parse("http://127.0.0.1:3000")?, Duration::from_secs(5));
/// let report = run(&options, &HandshakeOptions { mode: HandshakeMode::Browser, concurrency: 50 }).await?;
/// println!("{} sessions/s", report.per_second);
/// # Ok(()) }
/// ```
pub async fn run(
    options: &RunOptions,
    handshake: &HandshakeOptions,
) -> Result<Report, LoadgenError> {
    validate_clients("--concurrency", handshake.concurrency)?;
    let context = Context::new(options)?;
    let connected = LatencyRecorder::new();
    let upgraded = LatencyRecorder::new();
    let closed = LatencyRecorder::new();
    let started = Instant::now();
    let deadline = started + options.duration;
    let mut lanes = JoinSet::new();
    for _ in 0..handshake.concurrency {
        let context = context.clone();
        let (connected, upgraded, closed) = (connected.clone(), upgraded.clone(), closed.clone());
        let mode = handshake.mode;
        lanes.spawn(async move {
            let mut completed = 0u64;
            while Instant::now() < deadline {
                match session(&context, mode).await {
                    Ok(times) => {
                        completed += 1;
                        connected.record(times.connected);
                        if let Some(took) = times.upgraded {
                            upgraded.record(took);
                        }
                        closed.record(times.closed);
                    }
                    Err(error) => {
                        context.errors.record(&error);
                        tokio::time::sleep(ERROR_BACKOFF).await;
                    }
                }
            }
            completed
        });
    }
    // A session in flight at the deadline takes at most a few steps.
    let limit = deadline + options.timeout * 4;
    let completed: u64 = join_within(lanes, limit, &context.errors)
        .await
        .into_iter()
        .sum();
    let elapsed = started.elapsed();
    Ok(Report::new(
        "handshake",
        context.url(),
        options.sources,
        options.duration,
        elapsed,
        "sessions",
        completed,
        &connected,
        &context.errors,
        Details::Handshake(HandshakeDetails {
            mode: handshake.mode.name(),
            concurrency: handshake.concurrency,
            upgraded_latency: upgraded.percentiles(),
            close_latency: closed.percentiles(),
        }),
    ))
}

/// One whole session: open, connect, (upgrade,) close.
async fn session(context: &Context, mode: HandshakeMode) -> Result<SessionTimes, ClientError> {
    let started = Instant::now();
    let (client, connected, upgraded) = match mode {
        HandshakeMode::Browser => {
            // The polling requests and the upgrade from one source address,
            // as a browser's.
            let connector = Arc::new(context.connector.pinned());
            let polling = PollingTransport::open(connector.clone(), &context.target).await?;
            let client = SocketClient::join_main_namespace(Transport::Polling(polling)).await?;
            let connected = started.elapsed();
            let client = client.upgrade(&connector, &context.target).await?;
            (client, connected, Some(started.elapsed()))
        }
        HandshakeMode::Websocket | HandshakeMode::Polling => {
            let kind = if mode == HandshakeMode::Websocket {
                TransportKind::Websocket
            } else {
                TransportKind::Polling
            };
            let client = SocketClient::connect(&context.connector, &context.target, kind).await?;
            (client, started.elapsed(), None)
        }
    };
    let closing = Instant::now();
    client.close().await?;
    Ok(SessionTimes {
        connected,
        upgraded,
        closed: closing.elapsed(),
    })
}
