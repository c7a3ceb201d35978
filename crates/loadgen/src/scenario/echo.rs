//! `echo`: C connected clients, each emitting `42<id>["echo","<payload>"]`
//! and waiting for its ack `43<id>["<payload>"]`, in a loop for
//! `--duration`: acks per second and ack latency.

use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::client::{SocketClient, TransportKind, ack_data};
use crate::error::{ClientError, LoadgenError};
use crate::latency::LatencyRecorder;
use crate::packet::event_with_ack;
use crate::report::{Details, EchoDetails, Report};
use crate::scenario::{Context, join_within};
use crate::target::{RunOptions, validate_clients};

/// The largest payload: below the server's default maxPayload (1 MB) with
/// room for the packet around it.
pub const MAX_PAYLOAD: usize = 900_000;

/// Options of the `echo` scenario.
#[derive(Debug, Clone)]
pub struct EchoOptions {
    /// Clients.
    pub clients: usize,
    /// Bytes of the echoed string.
    pub payload_bytes: usize,
    /// Their transport.
    pub transport: TransportKind,
}

/// Runs the `echo` scenario.
///
/// ```no_run
/// # async fn run() -> Result<(), iocluster_loadgen::LoadgenError> {
/// use std::time::Duration;
/// use iocluster_loadgen::{RunOptions, Target, TransportKind};
/// use iocluster_loadgen::scenario::echo::{run, EchoOptions};
/// let options = RunOptions::new(Target::parse("http://127.0.0.1:3000")?, Duration::from_secs(5));
/// let echo = EchoOptions { clients: 100, payload_bytes: 32, transport: TransportKind::Websocket };
/// let report = run(&options, &echo).await?;
/// println!("{} acks/s", report.per_second);
/// # Ok(()) }
/// ```
pub async fn run(options: &RunOptions, echo: &EchoOptions) -> Result<Report, LoadgenError> {
    validate_clients("--clients", echo.clients)?;
    if echo.payload_bytes > MAX_PAYLOAD {
        return Err(LoadgenError::BadOption(format!(
            "--payload must be at most {MAX_PAYLOAD} bytes"
        )));
    }
    let context = Context::new(options)?;
    let open = LatencyRecorder::new();
    let clients = context
        .connect_clients(echo.clients, echo.transport, &open)
        .await;
    let connected = clients.len();

    // The payload is a JSON string of ASCII letters: its text is its size.
    let args = format!("\"{}\"", "x".repeat(echo.payload_bytes));
    let expected_ack = format!("[{args}]");
    let latency = LatencyRecorder::new();
    let started = Instant::now();
    let deadline = started + options.duration;
    let mut tasks = JoinSet::new();
    for mut client in clients {
        let (args, expected_ack) = (args.clone(), expected_ack.clone());
        let (latency, errors) = (latency.clone(), context.errors.clone());
        tasks.spawn(async move {
            let mut acks = 0u64;
            while Instant::now() < deadline {
                let sent = Instant::now();
                match echo_once(&mut client, &args, &expected_ack).await {
                    Ok(()) => {
                        latency.record(sent.elapsed());
                        acks += 1;
                    }
                    Err(error) => {
                        // The session may be broken: this client stops.
                        errors.record(&error);
                        break;
                    }
                }
            }
            // The close is not measured here (the handshake scenario
            // checks it).
            let _ = client.close().await;
            acks
        });
    }
    let limit = deadline + options.timeout * 3;
    let acks: u64 = join_within(tasks, limit, &context.errors)
        .await
        .into_iter()
        .sum();
    let elapsed = started.elapsed();
    Ok(Report::new(
        "echo",
        context.url(),
        options.sources,
        options.duration,
        elapsed,
        "acks",
        acks,
        &latency,
        &context.errors,
        Details::Echo(EchoDetails {
            transport: echo.transport,
            clients: echo.clients,
            connected,
            payload_bytes: echo.payload_bytes,
        }),
    ))
}

/// One emit and its ack, checked to carry the payload back.
async fn echo_once(
    client: &mut SocketClient,
    args: &str,
    expected_ack: &str,
) -> Result<(), ClientError> {
    let id = client.next_ack_id();
    client.send(event_with_ack(id, "echo", args)).await?;
    let ack = client.wait_ack(id).await?;
    if ack_data(&ack) != Some(expected_ack) {
        return Err(ClientError::unexpected(&ack));
    }
    Ok(())
}
