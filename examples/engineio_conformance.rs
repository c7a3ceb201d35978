//! The server the official Engine.IO test suite expects
//! (socketio/engine.io-protocol, `test-suite/`): pingInterval 300 ms,
//! pingTimeout 200 ms, maxPayload 1,000,000, any origin, every message echoed,
//! served at `/engine.io/` on port 3000 (or `PORT`).

use std::sync::Arc;
use std::time::Duration;

use iocluster_engineio::{
    CloseReason, Cors, CorsOrigin, Engine, EngineConfig, EngineHandler, Message, Session,
};

/// Sends every message back to its sender.
struct Echo;

impl EngineHandler for Echo {
    fn on_open(&self, _: &Arc<Session>) {}

    fn on_message(&self, session: &Arc<Session>, message: Message) {
        let _ = session.send(message);
    }

    fn on_close(&self, _: &Arc<Session>, _: CloseReason) {}
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let config = EngineConfig::default()
        .path("/engine.io/")
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(Duration::from_millis(200))
        .max_payload(1_000_000)
        .cors(Cors::new(CorsOrigin::Any));
    let engine = Engine::new(config, Echo);
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!(
        "engine.io conformance server on http://{}/engine.io/",
        listener.local_addr()?
    );
    iocluster_engineio::serve(listener, engine.router()).await
}
