//! One socketioxide process (a multi-threaded tokio runtime, one thread per
//! core) with the same Socket.IO handlers as iocluster's built-in app:
//! `echo(...args)` acks its arguments back, `broadcast(payload)` emits
//! `broadcast` with the payload to every client on `/`, then acks.
//!
//! Usage: `bench-socketioxide PORT` (listens on 127.0.0.1).

use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Data, SocketRef};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = match std::env::args().nth(1).map(|p| p.parse()) {
        Some(Ok(port)) => port,
        _ => {
            eprintln!("usage: bench-socketioxide PORT");
            std::process::exit(2);
        }
    };
    let (layer, io) = SocketIo::new_layer();
    io.ns("/", async |socket: SocketRef| {
        socket.on("echo", async |Data(args): Data<Value>, ack: AckSender| {
            let _ = ack.send(&args);
        });
        socket.on(
            "broadcast",
            async |Data(payload): Data<Value>, ack: AckSender, io: SocketIo| {
                let _ = io.emit("broadcast", &payload).await;
                let _ = ack.send(&());
            },
        );
    });
    let app = axum::Router::new().layer(layer);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await
}
