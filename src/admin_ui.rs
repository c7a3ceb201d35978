//! The Socket.IO Admin UI for a fleet: the master passes the choice
//! (`iocluster --admin-ui …`) to its workers in their environment, as
//! [`Fleet`](crate::Fleet) does the adapter, and each worker instruments its
//! own server under a `serverId` that names its node and worker, so the UI
//! shows every worker of every node wherever it is connected.
//!
//! A worker program of your own follows the master's flags with
//! [`AdminUi::instrument_worker`]:
//!
//! ```no_run
//! use iocluster::{AdminUi, Fleet};
//!
//! fn main() -> Result<(), iocluster::cluster::ClusterError> {
//!     Fleet::Local.cluster().build().run(|worker| {
//!         let io = worker.socketio(worker.socketio_config());
//!         let router = io.router();
//!         // With `iocluster --admin-ui … -- ./this-program`: the UI at /admin/.
//!         match AdminUi::instrument_worker(worker, &io) {
//!             Some(ui) => router.merge(ui),
//!             None => router,
//!         }
//!     })
//! }
//! ```

use iocluster_admin_ui::{AdminUiOptions, Auth, Mode};
use iocluster_cluster::{ClusterBuilder, WorkerContext};
use iocluster_socketio::Server;
use serde::{Deserialize, Serialize};

/// The Admin UI crate: `instrument()` for any server, its options, the UI's
/// router.
pub use iocluster_admin_ui as ui;

/// The variable through which a master tells its workers to instrument
/// their servers (JSON; unset or empty: no Admin UI).
const WORKER_VAR: &str = "IOCLUSTER_WORKER_ADMIN_UI";

/// The Admin UI of a fleet's workers: how it logs in and what it may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminUi {
    /// How the UI logs in.
    pub auth: Auth,
    /// Development (every socket and event) or production (stats only).
    pub mode: Mode,
    /// Watch only: no join, leave, disconnect nor emit.
    pub readonly: bool,
}

impl AdminUi {
    /// Checks the settings as `instrument()` will in each worker (a
    /// password that is not a bcrypt hash), so that a master refuses them
    /// at startup rather than every worker failing.
    pub fn validate(&self) -> Result<(), String> {
        self.auth.validate().map_err(|_| {
            "--admin-ui-password-hash is not a bcrypt hash ($2b$10$…): make one with \
             `htpasswd -nbBC 10 \"\" PASSWORD | cut -c2-`"
                .to_owned()
        })
    }

    /// Passes `settings` to the workers of `builder`'s master; `None`: no
    /// Admin UI (the variable is set empty, so that a worker never
    /// inherits a stale choice).
    pub fn apply(settings: Option<&AdminUi>, builder: ClusterBuilder) -> ClusterBuilder {
        let json = settings
            .and_then(|settings| serde_json::to_string(settings).ok())
            .unwrap_or_default();
        builder.worker_env(WORKER_VAR, json)
    }

    /// The settings this worker's master passed, if any.
    pub fn from_worker_env() -> Option<Result<AdminUi, String>> {
        let json = std::env::var(WORKER_VAR).ok().filter(|v| !v.is_empty())?;
        Some(
            serde_json::from_str(&json)
                .map_err(|error| format!("{WORKER_VAR} is malformed: {error}")),
        )
    }

    /// The `serverId` of a worker: host name, node and worker instance
    /// (`web-1/node-7/worker-123`).
    pub fn server_id(worker: &WorkerContext) -> String {
        format!(
            "{}/node-{}/worker-{}",
            iocluster_admin_ui::hostname(),
            worker.node(),
            worker.instance()
        )
    }

    /// Instruments `io` with these settings under `server_id`; returns the
    /// UI's router (at `/admin/`), which keeps the instrumentation running.
    pub fn instrument(
        &self,
        io: &Server,
        server_id: String,
    ) -> Result<axum::Router, iocluster_admin_ui::AdminUiError> {
        let options = AdminUiOptions::new(self.auth.clone())
            .mode(self.mode)
            .readonly(self.readonly)
            .server_id(server_id);
        Ok(iocluster_admin_ui::instrument(io, options)?.ui_router())
    }

    /// In a worker whose master was started with `--admin-ui`: instruments
    /// `io` and returns the UI's router to merge into the app's; `None`
    /// without `--admin-ui`, or (logged) when the settings do not work.
    pub fn instrument_worker(worker: &WorkerContext, io: &Server) -> Option<axum::Router> {
        let settings = match AdminUi::from_worker_env()? {
            Ok(settings) => settings,
            Err(error) => {
                tracing::error!("admin UI off: {error}");
                return None;
            }
        };
        match settings.instrument(io, AdminUi::server_id(worker)) {
            Ok(router) => Some(router),
            Err(error) => {
                tracing::error!("admin UI off: {error}");
                None
            }
        }
    }
}
