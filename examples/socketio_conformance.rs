//! The server the official Socket.IO test suite expects
//! (socketio/socket.io-protocol, `test-suite/`): pingInterval 300 ms,
//! pingTimeout 200 ms, maxPayload 1,000,000, connectTimeout 1 s, any origin;
//! on `/` it emits `auth`, echoes `message` as `message-back` and acks
//! `message-with-ack`; on `/custom` it emits `auth`. Port 3000 or `PORT`.

use std::time::Duration;

use iocluster_socketio::engineio::{Cors, CorsOrigin, EngineConfig};
use iocluster_socketio::{Payload, Server, ServerConfig};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let engine = EngineConfig::default()
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(Duration::from_millis(200))
        .max_payload(1_000_000)
        .cors(Cors::new(CorsOrigin::Any));
    let config = ServerConfig::default()
        .engine(engine)
        .connect_timeout(Duration::from_millis(1000));
    let io = Server::new(config);
    io.on_connection(|socket| {
        let _ = socket.emit("auth", socket.auth().clone());
        socket.on("message", |socket, args, _ack| {
            let _ = socket.emit("message-back", args);
        });
        socket.on("message-with-ack", |_socket, args, ack| {
            if let Some(ack) = ack {
                let _ = ack.send(args);
            }
        });
    });
    io.of("/custom").on_connection(|socket| {
        let _ = socket.emit("auth", Payload::from(socket.auth().clone()));
    });
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!(
        "socket.io conformance server listening on http://{}/socket.io/",
        listener.local_addr()?
    );
    iocluster_socketio::engineio::serve(listener, io.router()).await
}
