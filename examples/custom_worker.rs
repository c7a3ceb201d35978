//! Your own app on every core: run it under the iocluster master with
//! `cargo run --release -- --workers 4 -- target/release/examples/custom_worker`
//! (build it first with `cargo build --release --example custom_worker`),
//! or on its own: `cargo run --example custom_worker` starts a master that
//! runs this same program as its workers. Under
//! `iocluster --admin-ui … -- ./custom_worker`, the Socket.IO Admin UI is
//! served at `/admin/` and watches every worker.

use axum::routing::get;
use iocluster::{AdminUi, Fleet};
use serde_json::json;

fn main() -> Result<(), iocluster::cluster::ClusterError> {
    // Under `iocluster --redis URL -- ./custom_worker` the workers sync
    // through Redis, as the master says; run alone, through the master.
    Fleet::Local.cluster().workers(2).build().run(|worker| {
        let io = worker.socketio(worker.socketio_config());
        io.on_connection(|socket| {
            // Acks back whatever it is sent.
            socket.on("echo", |_socket, args, ack| {
                if let Some(ack) = ack {
                    let _ = ack.send(args);
                }
            });
            // Reaches every client on every worker.
            socket.on("shout", |socket, args, _ack| {
                socket.namespace().emit("shout", args);
            });
            let _ = socket.emit("hello", json!({ "worker": std::process::id() }));
        });
        let router = io.router().route("/", get(|| async { "custom worker up" }));
        // With the master's --admin-ui: instrument this worker's server
        // and serve the UI.
        match AdminUi::instrument_worker(worker, &io) {
            Some(admin_ui) => router.merge(admin_ui),
            None => router,
        }
    })
}
