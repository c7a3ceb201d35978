//! What `instrument()` takes: Node's `InstrumentOptions` (`namespaceName`,
//! `auth`, `readonly`, `serverId`, `mode`) with the same defaults, plus the
//! few knobs Node hard-codes (the stats interval) and ours (login
//! throttling, how long a login lasts).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How the UI logs in.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Auth {
    /// No login at all (Node's `auth: false`): anyone who reaches the
    /// server can watch it and, unless read-only, act on its sockets.
    /// Development only.
    None,
    /// A username and a bcrypt hash of the password (Node's
    /// `auth: {type: "basic", username, password}`, `password` being the
    /// hash).
    Basic {
        /// The username the form must carry.
        username: String,
        /// The bcrypt hash (`$2b$10$…`; `$2a$` and `$2y$` too) of the
        /// password.
        password: String,
    },
}

impl Auth {
    /// Checks that the password of [`Auth::Basic`] is a bcrypt hash, as
    /// [`instrument`](crate::instrument) does: for a master to refuse it at
    /// startup rather than each worker.
    pub fn validate(&self) -> Result<(), crate::AdminUiError> {
        match self {
            Auth::None => Ok(()),
            Auth::Basic { password, .. } => password
                .parse::<bcrypt::HashParts>()
                .map(|_| ())
                .map_err(|_| crate::AdminUiError::InvalidPasswordHash),
        }
    }
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            // The hash stays out of logs.
            Auth::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .finish_non_exhaustive(),
        }
    }
}

/// How much the UI is told (Node's `mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Every socket, room and event (`all_sockets`, `socket_connected`,
    /// `event_received`, …), as well as the periodic stats. The UI's
    /// default, and Node's when `NODE_ENV` is not `production`.
    #[default]
    Development,
    /// Only the periodic stats, with aggregated counts: nothing per socket
    /// or per event.
    Production,
}

impl Mode {
    /// `development` or `production`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Development => "development",
            Mode::Production => "production",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(text: &str) -> Result<Mode, String> {
        match text {
            "development" => Ok(Mode::Development),
            "production" => Ok(Mode::Production),
            other => Err(format!(
                "unknown mode {other:?}: use development or production"
            )),
        }
    }
}

/// The options of [`instrument`](crate::instrument).
///
/// ```
/// use std::time::Duration;
/// use iocluster_admin_ui::{AdminUiOptions, Auth, Mode};
///
/// let options = AdminUiOptions::new(Auth::Basic {
///     username: "admin".into(),
///     password: "$2b$10$heqvAkYMez.Va6Et2uXInOnkCT6/uQj1brkrbyG3LpopDklcq7ZOS".into(),
/// })
/// .mode(Mode::Production)
/// .server_id("eu-1/worker-3")
/// .stats_interval(Duration::from_secs(5));
/// assert!(!options.readonly);
/// ```
#[derive(Debug, Clone)]
pub struct AdminUiOptions {
    /// The namespace the UI connects to. Default `/admin`.
    pub namespace_name: String,
    /// How the UI logs in. No default: as in Node, it must be chosen.
    pub auth: Auth,
    /// Refuse every action (join, leave, disconnect, emit): the UI only
    /// watches. Default `false`.
    pub readonly: bool,
    /// The name under which this server shows in the UI, which adds up
    /// servers by it. Default: the host name (as Node outside a cluster).
    pub server_id: Option<String>,
    /// Development (everything) or production (stats only). Default
    /// development, as the UI's.
    pub mode: Mode,
    /// How often `server_stats` is emitted. Default 2 s (Node's).
    pub stats_interval: Duration,
    /// How long a login lasts: the session id handed to the UI (to
    /// reconnect without the password) expires after it. Default 24 h
    /// (Node's `RedisStore` default).
    pub session_duration: Duration,
    /// Failed logins allowed per client address within
    /// [`login_window`](Self::login_window); past it, logins from that
    /// address are refused without checking the password. Default 5.
    pub login_attempts: u32,
    /// See [`login_attempts`](Self::login_attempts). Default 1 minute.
    pub login_window: Duration,
}

impl AdminUiOptions {
    /// The defaults, with this authentication.
    pub fn new(auth: Auth) -> AdminUiOptions {
        AdminUiOptions {
            namespace_name: "/admin".to_owned(),
            auth,
            readonly: false,
            server_id: None,
            mode: Mode::Development,
            stats_interval: Duration::from_secs(2),
            session_duration: Duration::from_secs(24 * 60 * 60),
            login_attempts: 5,
            login_window: Duration::from_secs(60),
        }
    }

    /// Sets [`namespace_name`](Self::namespace_name).
    pub fn namespace_name(mut self, name: impl Into<String>) -> Self {
        self.namespace_name = name.into();
        self
    }

    /// Sets [`readonly`](Self::readonly).
    pub fn readonly(mut self, readonly: bool) -> Self {
        self.readonly = readonly;
        self
    }

    /// Sets [`server_id`](Self::server_id).
    pub fn server_id(mut self, id: impl Into<String>) -> Self {
        self.server_id = Some(id.into());
        self
    }

    /// Sets [`mode`](Self::mode).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets [`stats_interval`](Self::stats_interval).
    pub fn stats_interval(mut self, interval: Duration) -> Self {
        self.stats_interval = interval;
        self
    }

    /// Sets [`session_duration`](Self::session_duration).
    pub fn session_duration(mut self, duration: Duration) -> Self {
        self.session_duration = duration;
        self
    }

    /// Sets [`login_attempts`](Self::login_attempts) per
    /// [`login_window`](Self::login_window).
    pub fn login_throttle(mut self, attempts: u32, window: Duration) -> Self {
        self.login_attempts = attempts;
        self.login_window = window;
        self
    }
}
