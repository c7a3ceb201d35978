//! The scenarios, and what they share: a [`Context`] (connector, target,
//! error counts) and the bounded setup and teardown of many clients.

pub mod echo;
pub mod fanout;
pub mod handshake;
pub mod hold;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::client::{SocketClient, TransportKind};
use crate::error::{ClientError, ErrorCounts, LoadgenError};
use crate::latency::LatencyRecorder;
use crate::net::Connector;
use crate::target::{RunOptions, Target};

pub use crate::target::SETUP_LIMIT;

/// How long a client waits after an error before its next try (keeps a
/// refusing server from turning a run into a busy loop).
pub const ERROR_BACKOFF: Duration = Duration::from_millis(10);

/// What a scenario's clients share.
#[derive(Debug, Clone)]
pub struct Context {
    /// Opens the TCP connections.
    pub connector: Arc<Connector>,
    /// The server.
    pub target: Target,
    /// The run's options.
    pub options: RunOptions,
    /// The run's errors.
    pub errors: ErrorCounts,
}

impl Context {
    /// A context for `options` (checked).
    pub fn new(options: &RunOptions) -> Result<Context, LoadgenError> {
        options.validate()?;
        let mut connector = Connector::new(options.target.addr(), options.sources, options.timeout);
        if options.target.is_tls() {
            let ca_file = options.ca_file.as_deref().ok_or_else(|| {
                LoadgenError::BadOption("an https:// --url needs --ca-file".into())
            })?;
            connector = connector.with_tls(crate::tls::connector(ca_file)?);
        }
        Ok(Context {
            connector: Arc::new(connector),
            target: options.target.clone(),
            options: options.clone(),
            errors: ErrorCounts::default(),
        })
    }

    /// The `--url` as given, for reports.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.target.addr(), self.target.path())
    }

    /// Connects `count` Socket.IO clients over `kind`, at most
    /// `connect_concurrency` at once, within the run's `setup_limit`; records each
    /// open latency in `latency` and counts failures.
    pub async fn connect_clients(
        &self,
        count: usize,
        kind: TransportKind,
        latency: &LatencyRecorder,
    ) -> Vec<SocketClient> {
        let mut clients = Vec::with_capacity(count);
        self.connect_each(count, kind, latency, |client| clients.push(client))
            .await;
        clients
    }

    /// As [`connect_clients`](Context::connect_clients), handing each
    /// client to `each` as soon as it is connected (a client that must
    /// answer pings while the others connect); returns how many connected.
    pub async fn connect_each(
        &self,
        count: usize,
        kind: TransportKind,
        latency: &LatencyRecorder,
        mut each: impl FnMut(SocketClient),
    ) -> usize {
        let limit = tokio::time::sleep(self.options.setup_limit);
        tokio::pin!(limit);
        let mut pending = futures_util::stream::iter(0..count)
            .map(|_| async {
                let started = Instant::now();
                let client = SocketClient::connect(&self.connector, &self.target, kind).await;
                (client, started.elapsed())
            })
            .buffer_unordered(self.options.connect_concurrency);
        let mut connected = 0;
        let mut failed = 0;
        loop {
            tokio::select! {
                next = pending.next() => match next {
                    Some((Ok(client), took)) => {
                        latency.record(took);
                        connected += 1;
                        each(client);
                    }
                    Some((Err(error), _)) => {
                        failed += 1;
                        self.errors.record(&error);
                    }
                    None => break,
                },
                () = &mut limit => {
                    for _ in connected + failed..count {
                        self.errors.record(&ClientError::Timeout("the setup of every client"));
                    }
                    break;
                }
            }
        }
        connected
    }
}

/// Waits for every task of `tasks` until `limit`, then aborts the rest
/// (counted as timeouts); returns the outputs of those that finished.
pub async fn join_within<T: 'static>(
    mut tasks: JoinSet<T>,
    limit: Instant,
    errors: &ErrorCounts,
) -> Vec<T> {
    let mut outputs = Vec::with_capacity(tasks.len());
    loop {
        tokio::select! {
            next = tasks.join_next() => match next {
                Some(Ok(output)) => outputs.push(output),
                Some(Err(error)) => {
                    tracing::warn!(%error, "a client task failed");
                    errors.record(&ClientError::Closed("a client task panicked"));
                }
                None => return outputs,
            },
            () = tokio::time::sleep_until(limit) => {
                for _ in 0..tasks.len() {
                    errors.record(&ClientError::Timeout("a client to stop"));
                }
                tasks.abort_all();
                return outputs;
            }
        }
    }
}

/// Closes `clients`, at most `concurrency` at once; each close is bounded
/// by the timeout, so this ends. Errors are ignored: the run is measured
/// already (the handshake scenario is the one that checks closes).
pub async fn close_all(clients: Vec<SocketClient>, concurrency: usize) {
    futures_util::stream::iter(clients)
        .for_each_concurrent(concurrency, |client| async {
            let _ = client.close().await;
        })
        .await;
}
