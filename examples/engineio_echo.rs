//! An Engine.IO server that echoes every message, text or binary.
//!
//! `cargo run --release --example engineio_echo` serves `/engine.io/` on
//! port 3000 (or `PORT`), accepting any origin. `MAX_PAYLOAD` raises the
//! message size limit.

use std::sync::Arc;

use iocluster_engineio::{
    CloseReason, Cors, CorsOrigin, Engine, EngineConfig, EngineHandler, Message, Session,
};

/// Sends every message back to its sender.
struct Echo;

impl EngineHandler for Echo {
    fn on_open(&self, _: &Arc<Session>) {}

    fn on_message(&self, session: &Arc<Session>, message: Message) {
        if let Err(error) = session.send(message) {
            tracing::warn!(sid = %session.id(), %error, "echo dropped");
        }
    }

    fn on_close(&self, _: &Arc<Session>, _: CloseReason) {}
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let max_payload = std::env::var("MAX_PAYLOAD")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let config = EngineConfig::default()
        .path("/engine.io/")
        .max_payload(max_payload)
        .cors(Cors::new(CorsOrigin::Any));
    let engine = Engine::new(config, Echo);
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!(
        "engine.io echo listening on http://{}/engine.io/",
        listener.local_addr()?
    );
    iocluster_engineio::serve(listener, engine.router()).await
}
