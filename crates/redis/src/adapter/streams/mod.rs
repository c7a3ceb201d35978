//! The Redis streams adapter, wire-compatible with Node's
//! `@socket.io/redis-streams-adapter` 0.2: socket.io-adapter's
//! `ClusterAdapterWithHeartbeat` messages as the entries of one Redis
//! stream, and connection state recovery across servers.
//!
//! Every server appends its messages to the stream (`XADD … MAXLEN ~`,
//! `entry.rs`) through one ordered queue (`writer.rs`) and reads every
//! entry with one `XREAD BLOCK` loop on a connection of its own
//! (`reader.rs`). Servers count each other by their writes, heartbeats
//! included (`nodes.rs`). With recovery on, a broadcast's offset is its
//! entry id; sessions live in Redis under Node's keys (`session.rs`) and
//! are restored with the broadcasts they missed from the stream
//! (`restore.rs`), on any server, Node's included.
//!
//! Differences from Node, each for a reason:
//! - with recovery on, this server's own recorded broadcasts reach its
//!   clients when the reader reads them back (Node delivers them once
//!   `XADD` answers): one order, the stream's, for every server and every
//!   replay;
//! - with `persist_connected_sessions` (the default) sessions of connected
//!   sockets are kept too, so a server killed without a word loses no
//!   session.

mod config;
mod entry;
mod factory;
mod id;
mod nodes;
mod reader;
mod restore;
mod session;
mod transport;
mod writer;

pub use self::config::RedisStreamsAdapterConfig;
pub use self::factory::RedisStreamsAdapterFactory;
