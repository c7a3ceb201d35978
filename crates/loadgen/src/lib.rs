//! iocluster-loadgen: a load generator for iocluster (and any Engine.IO v4 /
//! Socket.IO v5 server) that speaks the protocols itself, over raw tokio
//! TCP for long-polling and tokio-tungstenite for WebSocket.
//!
//! Four scenarios, each a function taking [`RunOptions`] and its own
//! options and returning a [`Report`]:
//!
//! - [`scenario::handshake`]: whole sessions (browser-style polling then
//!   upgrade, WebSocket only, or polling only) per second, open latency;
//! - [`scenario::echo`]: emits with acks in a loop, acks per second and
//!   latency;
//! - [`scenario::fanout`]: broadcasts to many clients, deliveries per second
//!   and delivery latency;
//! - [`scenario::hold`]: many idle sessions, the server's memory per session.
//!
//! Every connect, request, read and write has a timeout and every run a
//! bounded duration, so a run always ends; protocol errors are counted by
//! kind ([`ErrorKind`]) instead of aborting the run. Client sockets are
//! bound to several loopback source addresses in turn ([`net::Connector`]),
//! and only loopback targets are accepted ([`Target`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), iocluster_loadgen::LoadgenError> {
//! use std::time::Duration;
//! use iocluster_loadgen::{RunOptions, Target, TransportKind};
//! use iocluster_loadgen::scenario::echo::{self, EchoOptions};
//!
//! let options = RunOptions::new(Target::parse("http://127.0.0.1:3000")?, Duration::from_secs(5));
//! let echo = EchoOptions { clients: 10, payload_bytes: 32, transport: TransportKind::Websocket };
//! let report = echo::run(&options, &echo).await?;
//! println!("{}", report.to_json_line());
//! eprint!("{}", report.summary());
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod client;
pub mod error;
pub mod http;
pub mod latency;
pub mod net;
pub mod packet;
pub mod polling;
pub mod proctree;
pub mod report;
pub mod scenario;
pub mod target;
pub mod tls;
pub mod websocket;

pub use client::{SocketClient, TransportKind};
pub use error::{ClientError, ErrorCounts, ErrorKind, LoadgenError};
pub use latency::{LatencyRecorder, Percentiles};
pub use report::{Details, Report};
pub use target::{RunOptions, Target};
