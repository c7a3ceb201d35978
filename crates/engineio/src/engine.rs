//! The engine: its options, its handler and the table of live sessions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;

use crate::config::EngineConfig;
use crate::handler::{CloseReason, EngineHandler};
use crate::session::Session;
use crate::sid::Sid;

/// What every session of an engine shares.
pub(crate) struct EngineShared {
    pub(crate) config: EngineConfig,
    pub(crate) handler: Arc<dyn EngineHandler>,
    sessions: Mutex<HashMap<Sid, Arc<Session>>>,
}

impl EngineShared {
    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<Sid, Arc<Session>>> {
        self.sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn insert(&self, session: Arc<Session>) {
        self.sessions().insert(session.id().clone(), session);
    }

    pub(crate) fn remove(&self, sid: &Sid) {
        self.sessions().remove(sid);
    }

    pub(crate) fn get(&self, sid: &str) -> Option<Arc<Session>> {
        self.sessions().get(sid).cloned()
    }
}

/// An Engine.IO server: mount [`Engine::router`] in an axum app, or serve it
/// with [`serve`](crate::serve).
///
/// ```no_run
/// use std::sync::Arc;
/// use iocluster_engineio::{CloseReason, Engine, EngineConfig, EngineHandler, Message, Session};
///
/// struct Echo;
/// impl EngineHandler for Echo {
///     fn on_open(&self, _: &Arc<Session>) {}
///     fn on_message(&self, session: &Arc<Session>, message: Message) {
///         let _ = session.send(message);
///     }
///     fn on_close(&self, _: &Arc<Session>, _: CloseReason) {}
/// }
///
/// # async fn run() -> std::io::Result<()> {
/// let engine = Engine::new(EngineConfig::default(), Echo);
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// iocluster_engineio::serve(listener, engine.router()).await
/// # }
/// ```
#[derive(Clone)]
pub struct Engine {
    shared: Arc<EngineShared>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.shared.config)
            .field("sessions", &self.session_count())
            .finish()
    }
}

impl Engine {
    /// An engine with these options, telling `handler` about its sessions.
    pub fn new(config: EngineConfig, handler: impl EngineHandler) -> Engine {
        Engine::with_handler(config, Arc::new(handler))
    }

    /// Like [`Engine::new`], with a handler already shared.
    pub fn with_handler(config: EngineConfig, handler: Arc<dyn EngineHandler>) -> Engine {
        Engine {
            shared: Arc::new(EngineShared {
                config,
                handler,
                sessions: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The engine's options.
    pub fn config(&self) -> &EngineConfig {
        &self.shared.config
    }

    /// An axum router that serves the engine at its path.
    pub fn router(&self) -> Router {
        crate::service::router(self.clone())
    }

    /// The live session with this id.
    pub fn session(&self, sid: &str) -> Option<Arc<Session>> {
        self.shared.get(sid)
    }

    /// How many sessions are live.
    pub fn session_count(&self) -> usize {
        self.shared.sessions().len()
    }

    /// How many live sessions are on polling, and how many on WebSocket.
    pub fn sessions_by_transport(&self) -> (usize, usize) {
        let sessions: Vec<_> = self.shared.sessions().values().cloned().collect();
        let websocket = sessions
            .iter()
            .filter(|s| s.transport() == crate::TransportKind::WebSocket)
            .count();
        (sessions.len() - websocket, websocket)
    }

    /// Closes every session (`server shutting down`), delivering what is
    /// queued and a close packet to each.
    pub fn close_all(&self) {
        let sessions: Vec<_> = self.shared.sessions().values().cloned().collect();
        for session in sessions {
            session.close_gracefully(CloseReason::ServerShuttingDown);
        }
    }

    pub(crate) fn shared(&self) -> &Arc<EngineShared> {
        &self.shared
    }
}
