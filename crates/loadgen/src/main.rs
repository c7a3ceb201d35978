//! iocluster-bench: load an Engine.IO / Socket.IO server on loopback and
//! print one JSON line of results to stdout and a summary to stderr.
//!
//! Exit status: 0 when the run saw no protocol error, 1 when it saw some
//! (the results are printed all the same), 2 when it could not run.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use iocluster_loadgen::scenario;
use iocluster_loadgen::scenario::echo::EchoOptions;
use iocluster_loadgen::scenario::fanout::FanoutOptions;
use iocluster_loadgen::scenario::handshake::{HandshakeMode, HandshakeOptions};
use iocluster_loadgen::scenario::hold::{HoldOptions, MemorySource};
use iocluster_loadgen::{LoadgenError, Report, RunOptions, Target, TransportKind};

/// Load generator for iocluster: speaks Engine.IO v4 / Socket.IO v5 itself,
/// from several loopback source addresses, and never hangs.
#[derive(Debug, Parser)]
#[command(name = "iocluster-bench", version, about, long_about = None)]
struct Cli {
    /// The server, on loopback only: http://127.0.0.1:PORT[/path/] (the
    /// path defaults to /socket.io/).
    #[arg(long, global = true, default_value = "http://127.0.0.1:3000")]
    url: String,
    /// Bind client sockets to 127.0.0.1 ..= 127.0.0.N in turn.
    #[arg(long, global = true, default_value_t = 8)]
    sources: usize,
    /// How long the measured phase lasts: 10s, 500ms, 2m (a bare number
    /// is milliseconds, as for `iocluster`); at most 10m.
    #[arg(long, global = true, default_value = "10s", value_parser = iocluster_duration::parse)]
    duration: Duration,
    /// The bound of every connect, request, read and write.
    #[arg(long, global = true, default_value = "5s", value_parser = iocluster_duration::parse)]
    timeout: Duration,
    /// Clients connecting at once while a scenario sets up.
    #[arg(long, global = true, default_value_t = 64)]
    connect_concurrency: usize,
    /// How long a scenario may take to connect its clients before its
    /// measured phase (a `hold` of many sessions needs more); at most 10m.
    #[arg(long, global = true, default_value = "60s", value_parser = iocluster_duration::parse)]
    setup_limit: Duration,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Whole sessions (open, connect, close) per second, and open latency.
    Handshake {
        /// browser: polling then upgrade; websocket; polling.
        #[arg(long, value_enum, default_value = "browser")]
        mode: HandshakeMode,
        /// Sessions in flight at once.
        #[arg(long, default_value_t = 50)]
        concurrency: usize,
    },
    /// Emits with acks (`echo`) in a loop: acks per second, ack latency.
    Echo {
        /// Connected clients, each with one emit in flight.
        #[arg(long, default_value_t = 100)]
        clients: usize,
        /// Bytes of the echoed string.
        #[arg(long, default_value_t = 32)]
        payload: usize,
        /// The clients' transport.
        #[arg(long, value_enum, default_value = "websocket")]
        transport: TransportKind,
    },
    /// Broadcasts to many WebSocket clients: deliveries per second and
    /// delivery latency.
    Fanout {
        /// Receiving clients (one more client sends).
        #[arg(long, default_value_t = 100)]
        clients: usize,
        /// Broadcasts per second; 0: each as soon as the last is acked.
        #[arg(long, default_value_t = 50.0)]
        rate: f64,
    },
    /// Idle WebSocket sessions answering pings: the server's memory per
    /// session.
    Hold {
        /// Sessions to open.
        #[arg(long, default_value_t = 100)]
        clients: usize,
        /// Processes whose memory is measured.
        #[arg(long, value_delimiter = ',', conflicts_with = "pid_tree")]
        pids: Vec<u32>,
        /// The master: its memory and all its descendants' is measured.
        #[arg(long)]
        pid_tree: Option<u32>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("iocluster-bench: cannot start the runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(report) => {
            println!("{}", report.to_json_line());
            eprint!("{}", report.summary());
            if report.error_total == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("iocluster-bench: {error}");
            ExitCode::from(2)
        }
    }
}

/// Runs the chosen scenario, within a last-resort bound on the whole run.
async fn run(cli: Cli) -> Result<Report, LoadgenError> {
    let mut options = RunOptions::new(Target::parse(&cli.url)?, cli.duration);
    options.sources = cli.sources;
    options.timeout = cli.timeout;
    options.connect_concurrency = cli.connect_concurrency;
    options.setup_limit = cli.setup_limit;
    options.validate()?;
    // Each phase bounds itself; this only guards against a bug.
    let whole_run =
        options.setup_limit + options.duration + options.timeout * 8 + Duration::from_secs(10);
    let scenario = async {
        match cli.scenario {
            Scenario::Handshake { mode, concurrency } => {
                scenario::handshake::run(&options, &HandshakeOptions { mode, concurrency }).await
            }
            Scenario::Echo {
                clients,
                payload,
                transport,
            } => {
                let echo = EchoOptions {
                    clients,
                    payload_bytes: payload,
                    transport,
                };
                scenario::echo::run(&options, &echo).await
            }
            Scenario::Fanout { clients, rate } => {
                scenario::fanout::run(&options, &FanoutOptions { clients, rate }).await
            }
            Scenario::Hold {
                clients,
                pids,
                pid_tree,
            } => {
                let memory = match (pid_tree, pids.is_empty()) {
                    (Some(root), _) => MemorySource::Tree(root),
                    (None, false) => MemorySource::Pids(pids),
                    (None, true) => MemorySource::None,
                };
                scenario::hold::run(&options, &HoldOptions { clients, memory }).await
            }
        }
    };
    tokio::time::timeout(whole_run, scenario)
        .await
        .map_err(|_| LoadgenError::Overran(whole_run))?
}
