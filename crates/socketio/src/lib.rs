//! Socket.IO v5 server on the iocluster Engine.IO layer: namespaces (static
//! and dynamic), middlewares, events with acks, rooms, broadcasts, and the
//! [`Adapter`](adapter::Adapter) trait through which every cross-server
//! operation goes.
//!
//! The API follows Node's socket.io: `io.of("/chat")`, `socket.on`,
//! `socket.emit`, `io.to("room").except("other").emit`, `fetch_sockets`,
//! `server_side_emit`, connection state recovery. This crate knows nothing of
//! processes: the cluster and Redis adapters live in their own crates.
#![deny(missing_docs)]

mod ack;
pub mod adapter;
mod client;
pub mod client_bundle;
mod config;
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod fuzz;
mod namespace;
mod operators;
pub mod parser;
mod payload;
mod reason;
mod remote;
mod server;
mod socket;
mod stats;

pub use ack::{AckError, AckSender, LocalAcks};
pub use config::{RecoveryConfig, ServerConfig};
pub use namespace::{ConnectError, LocalNamespace, Namespace, RoomEvent, ServerAck};
pub use operators::BroadcastOperator;
pub use payload::{Payload, placeholder, placeholder_num};
pub use reason::DisconnectReason;
pub use remote::RemoteSocket;
pub use server::{DynamicNamespace, Server};
pub use socket::{Socket, SocketHandshake, SocketRef};
pub use stats::{ADAPTER_LATENCY_BUCKETS, LatencySnapshot, SocketIoStats};

pub use iocluster_engineio as engineio;
