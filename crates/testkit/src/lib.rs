//! What iocluster's tests share, in one place: the root's end-to-end tests
//! and the integration tests of every crate use it as a dev-dependency.
//!
//! The tests stay real: real servers on loopback ports, the real
//! `iocluster` binary, a real `redis-server`, real Node clients. The kit
//! makes that safe and short:
//! - [`process`]: child processes stopped by PID when their handle drops,
//!   and by the kernel (`PR_SET_PDEATHSIG`) when the test's thread dies, so
//!   a crashed or aborted test leaves nothing running. Its module docs say
//!   which thread may spawn what.
//! - [`wait`]: one bounded wait ([`within`]), its fallible twin
//!   ([`try_within`]) and [`eventually`] for state no event announces;
//!   [`event_log`]: a list of events a test can wait on.
//! - [`net`]: free loopback ports, for servers that must be told one.
//! - [`http`], [`http_connection`]: raw HTTP/1.1, exact bytes both ways
//!   (tests send malformed input).
//! - [`websocket`]: a raw WebSocket client.
//! - [`packets`], [`polling`], [`ws_client`]: Engine.IO and Socket.IO as
//!   the tests speak them, over polling and over WebSocket.
//! - [`redis`]: `redis-server`, a Redis Cluster, `redis-cli`.
//! - [`node`]: the Node peer of the Redis interop tests.
//! - [`iocluster`]: the `iocluster` binary, a master on port 0, `/status`.
//! - [`runtime`]: a thread of its own for long scenarios.
//! - [`corpus`]: the checked-in fuzz corpus, replayed by unit tests.
//!
//! Every wait is bounded ([`WAIT`] unless a test passes its own): a test
//! that would hang fails instead, naming what it was waiting for.
#![deny(missing_docs)]
// A test kit: a failed expectation here is a failed test, so it may panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod certificates;
pub mod corpus;
pub mod event_log;
pub mod http;
pub mod http_connection;
pub mod iocluster;
pub mod net;
pub mod node;
pub mod packets;
pub mod polling;
pub mod process;
pub mod redis;
pub mod runtime;
pub mod wait;
pub mod websocket;
pub mod ws_client;

pub use certificates::make_test_certificates;
pub use corpus::replay_corpus;
pub use event_log::EventLog;
pub use http::{Response, http_request, parse_response};
pub use http_connection::{CookieJar, HttpConnection, http, http_with_cookies};
pub use iocluster::{Master, Status, WorkerStatus, iocluster_binary, one_cluster_at_a_time};
pub use net::free_port;
pub use nix::sys::signal::Signal;
pub use node::NodePeer;
pub use packets::{
    ENGINE_PATH, connect_answer, connect_packet, connect_packet_sid, echo_ack, echo_packet,
    event_offset, handshake_target, open_packet, open_packet_sid, welcome_worker,
};
pub use polling::{PollingClient, PollingSession, open_sessions};
pub use process::{TestProcess, die_with_spawning_thread, open_fds, send_signal};
pub use redis::{RedisCluster, RedisServer, redis_cli};
pub use runtime::run_on_big_stack;
pub use wait::{POLL_EVERY, WAIT, eventually, try_within, within};
pub use websocket::{WsConnection, WsEnd, WsResponse};
pub use ws_client::{WsClient, WsClosed};
