//! The official Socket.IO Admin UI (`@socket.io/admin-ui`) for iocluster:
//! the server side of its `instrument()` on an
//! [`iocluster_socketio::Server`], and the UI itself (the npm package's
//! built files, embedded) to serve at `/admin/`.
//!
//! The protocol is Node's (`lib/index.ts` and `lib/typed-events.ts` of
//! `socketio/socket.io-admin-ui`): the UI connects to the `/admin`
//! namespace, logs in, and is sent `config`, then, in development mode,
//! `all_sockets` and every `socket_connected`, `socket_updated`,
//! `room_joined`, `room_left`, `event_received`, `event_sent` and
//! `socket_disconnected`; every server emits `server_stats` every 2 s. It
//! acts with `join`, `leave`, `_disconnect` and `emit`. Everything goes
//! through the server's adapter: each server (each worker, each node)
//! instruments itself, its events reach the UI wherever it is connected,
//! and an action reaches sockets on every server.
//!
//! ```no_run
//! use iocluster_admin_ui::{AdminUiOptions, Auth, instrument};
//! use iocluster_socketio::{Server, ServerConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let io = Server::new(ServerConfig::default());
//! let admin = instrument(
//!     &io,
//!     AdminUiOptions::new(Auth::Basic {
//!         username: "admin".into(),
//!         // bcrypt hash of the password
//!         password: "$2b$10$heqvAkYMez.Va6Et2uXInOnkCT6/uQj1brkrbyG3LpopDklcq7ZOS".into(),
//!     }),
//! )?;
//! // The UI at /admin/, Socket.IO at /socket.io/; the router keeps the
//! // instrumentation running.
//! let app = io.router().merge(admin.ui_router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! iocluster_engineio::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod actions;
mod auth;
mod options;
mod serialize;
mod stats;
mod ui;
mod verbose;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iocluster_socketio::{Namespace, Server};
use serde_json::json;
use tokio::sync::watch;

pub use options::{AdminUiOptions, Auth, Mode};
pub use ui::{UI_VERSION, ui_router};

/// Why [`instrument`] refused its options.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminUiError {
    /// The password of [`Auth::Basic`] is not a bcrypt hash.
    #[error("the admin UI password must be a bcrypt hash ($2b$...)")]
    InvalidPasswordHash,
    /// The namespace name does not start with `/`.
    #[error("the admin UI namespace {0:?} must start with /")]
    InvalidNamespace(String),
    /// A password could not be hashed.
    #[error("cannot hash the password: {0}")]
    Hash(String),
    /// `instrument` was called outside a Tokio runtime.
    #[error("instrument() needs a Tokio runtime")]
    NoRuntime,
}

/// A running instrumentation. It runs while this handle, or a router made
/// by [`Instrumentation::ui_router`], lives: dropping the last one stops
/// the stats.
#[derive(Clone)]
pub struct Instrumentation {
    shared: Arc<Shared>,
    /// Ends the stats task when the last handle goes (the namespace's
    /// handlers hold `shared`, not this).
    _stop: Arc<watch::Sender<()>>,
}

impl std::fmt::Debug for Instrumentation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instrumentation")
            .field("server_id", &self.shared.identity.server_id)
            .field("namespace", &self.shared.admin.name())
            .finish_non_exhaustive()
    }
}

/// What the handlers of one instrumentation share.
pub(crate) struct Shared {
    pub(crate) io: Server,
    pub(crate) admin: Namespace,
    pub(crate) options: AdminUiOptions,
    pub(crate) identity: stats::Identity,
}

impl Instrumentation {
    /// The `serverId` this server shows under.
    pub fn server_id(&self) -> &str {
        &self.shared.identity.server_id
    }

    /// The admin namespace.
    pub fn namespace(&self) -> &Namespace {
        &self.shared.admin
    }

    /// The UI at `/admin/` (see [`ui_router`]), preset to connect to this
    /// server's engine path and admin namespace; it keeps the
    /// instrumentation running while it is served.
    pub fn ui_router(&self) -> axum::Router {
        ui::router(
            "/admin",
            &self.shared.io.engine().config().path,
            &self.shared.options.namespace_name,
        )
        .layer(axum::Extension(self.clone()))
    }
}

/// Instruments `io` for the Admin UI (Node's `instrument(io, options)`):
/// creates the admin namespace with its login, answers the UI, emits
/// `server_stats` periodically and, in development mode, every socket and
/// event. Needs a Tokio runtime (it starts the stats task).
pub fn instrument(io: &Server, options: AdminUiOptions) -> Result<Instrumentation, AdminUiError> {
    if !options.namespace_name.starts_with('/') {
        return Err(AdminUiError::InvalidNamespace(options.namespace_name));
    }
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| AdminUiError::NoRuntime)?;
    options.auth.validate()?;
    let auth = match &options.auth {
        Auth::None => {
            tracing::warn!("admin UI without authentication: development only");
            None
        }
        Auth::Basic { username, password } => Some(auth::BasicAuth::new(
            username.clone(),
            password.clone(),
            options.session_duration,
            options.login_attempts,
            options.login_window,
        )?),
    };
    let admin = io.of(&options.namespace_name);
    let hostname = hostname();
    let identity = stats::Identity {
        server_id: options
            .server_id
            .clone()
            .unwrap_or_else(|| hostname.clone()),
        hostname,
        pid: std::process::id(),
        started: Instant::now(),
    };
    let (stop, stopped) = watch::channel(());
    let shared = Arc::new(Shared {
        io: io.clone(),
        admin: admin.clone(),
        options,
        identity,
    });
    if let Some(auth) = auth {
        login(&admin, auth);
    }
    actions::register(&shared);
    if shared.options.mode == Mode::Development {
        verbose::register(&shared);
    }
    runtime.spawn(emit_stats(Arc::clone(&shared), stopped));
    Ok(Instrumentation {
        shared,
        _stop: Arc::new(stop),
    })
}

/// A bcrypt hash of `password` (cost 10, as the Admin UI's documentation
/// makes them), for [`Auth::Basic`].
///
/// ```
/// let hash = iocluster_admin_ui::hash_password("changeit").unwrap();
/// assert!(hash.starts_with("$2b$10$"));
/// ```
pub fn hash_password(password: &str) -> Result<String, AdminUiError> {
    bcrypt::hash(password, 10).map_err(|error| AdminUiError::Hash(error.to_string()))
}

/// This machine's host name (Node's `os.hostname()`), the default
/// `serverId`; `localhost` when it cannot be read.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|name| name.into_string().ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// The login middleware; a socket that logged in with the password gets
/// its session id in a `session` event once connected.
fn login(admin: &Namespace, auth: auth::BasicAuth) {
    let auth = Arc::new(auth);
    // Session ids waiting for their socket's connection handler: a
    // middleware's emit would go through the adapter with recovery on,
    // before the socket is in its room, and be lost.
    let issued: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let pending = Arc::clone(&issued);
    admin.use_middleware(move |socket| {
        let auth = Arc::clone(&auth);
        let pending = Arc::clone(&pending);
        async move {
            if let Some(token) = auth.check(&socket).await? {
                let mut pending = pending.lock().unwrap_or_else(|p| p.into_inner());
                // Sockets refused after this middleware never take theirs.
                if pending.len() >= 1024 {
                    pending.clear();
                }
                pending.push((socket.id().to_owned(), token));
            }
            Ok(())
        }
    });
    admin.on_connection(move |socket| {
        let token = {
            let mut issued = issued.lock().unwrap_or_else(|p| p.into_inner());
            let found = issued.iter().position(|(id, _)| id == socket.id());
            found.map(|i| issued.swap_remove(i).1)
        };
        if let Some(token) = token {
            let _ = socket.emit("session", token);
        }
    });
}

/// Emits `server_stats` at once, then every `stats_interval`, until the
/// instrumentation is dropped.
async fn emit_stats(shared: Arc<Shared>, mut stopped: watch::Receiver<()>) {
    let interval = shared
        .options
        .stats_interval
        .max(Duration::from_millis(100));
    let mut aggregator = stats::Aggregator::new(&shared.io);
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stopped.changed() => return,
        }
        let stats = stats::server_stats(&shared.io, &shared.identity, &mut aggregator);
        shared.admin.emit("server_stats", stats);
    }
}

/// The features the UI may offer (`config.supportedFeatures`).
fn supported_features(options: &AdminUiOptions) -> serde_json::Value {
    let mut features: Vec<&str> = if options.readonly {
        Vec::new()
    } else {
        vec![
            "EMIT",
            "JOIN",
            "LEAVE",
            "DISCONNECT",
            "MJOIN",
            "MLEAVE",
            "MDISCONNECT",
        ]
    };
    features.push("AGGREGATED_EVENTS");
    if options.mode == Mode::Development {
        features.push("ALL_EVENTS");
    }
    json!({ "supportedFeatures": features })
}
