//! iocluster: Socket.IO on every core and every machine.
//!
//! This facade re-exports the layers — [`engineio`] (Engine.IO v4),
//! [`socketio`] (Socket.IO v5), [`cluster`] (master and workers), [`redis`]
//! (the Redis adapters and emitter) — picks the adapter that joins the
//! workers ([`Fleet`]: through the master or through Redis), passes the
//! Socket.IO Admin UI's settings to them ([`AdminUi`]), and holds the
//! built-in app that `cargo run --release` serves.
#![deny(missing_docs)]

pub mod admin_ui;
pub mod app;
pub mod fleet;
pub mod peers;

pub use admin_ui::AdminUi;
pub use fleet::Fleet;

pub use iocluster_cluster as cluster;
pub use iocluster_engineio as engineio;
pub use iocluster_redis as redis;
pub use iocluster_socketio as socketio;
