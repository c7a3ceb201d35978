//! What a worker's app is built with: the cluster's engine options, session
//! ids that name this worker, session reports to the master, and the
//! adapter that joins its namespaces to the other workers (and nodes).

use std::sync::{Arc, Mutex, MutexGuard};

use iocluster_engineio::{Engine, EngineConfig};
use iocluster_socketio::adapter::AdapterFactory;
use iocluster_socketio::{Server, ServerConfig};

use super::link::MasterLink;
use crate::config::{EngineOptions, SocketIoOptions};
use crate::report::CounterSource;
use crate::sid::{ClusterSid, InstanceId};

/// Given to the app of each worker: build your Socket.IO server (or bare
/// Engine.IO engine) from it, so that its sessions are routed to this
/// worker, counted by the master and closed cleanly at shutdown.
pub struct WorkerContext {
    engine: EngineOptions,
    socketio: SocketIoOptions,
    link: Arc<MasterLink>,
    adapter: Arc<dyn AdapterFactory>,
    pub(super) counters: Vec<CounterSource>,
    pub(super) servers: Mutex<Vec<Server>>,
    pub(super) engines: Mutex<Vec<Engine>>,
}

impl std::fmt::Debug for WorkerContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerContext")
            .field("instance", &self.link.instance())
            .finish_non_exhaustive()
    }
}

impl WorkerContext {
    pub(crate) fn new(
        engine: EngineOptions,
        socketio: SocketIoOptions,
        link: Arc<MasterLink>,
        adapter: Arc<dyn AdapterFactory>,
        counters: Vec<CounterSource>,
    ) -> WorkerContext {
        WorkerContext {
            engine,
            socketio,
            link,
            adapter,
            counters,
            servers: Mutex::new(Vec::new()),
            engines: Mutex::new(Vec::new()),
        }
    }

    /// This worker's instance number (unique per worker process started by
    /// this master; the first characters of every session id it makes).
    pub fn instance(&self) -> InstanceId {
        self.link.instance()
    }

    /// The number of this worker's node in the fleet (its master's
    /// `--node-id`, or the random one it picked): with
    /// [`WorkerContext::instance`], names this worker among every worker
    /// of every node.
    pub fn node(&self) -> crate::sid::NodeId {
        self.link.node()
    }

    /// The engine options given on the master's command line.
    pub fn engine_options(&self) -> &EngineOptions {
        &self.engine
    }

    /// An engine configuration for this worker: the cluster's options, its
    /// session ids and its session reports. Register an engine you build
    /// from it with [`WorkerContext::register_engine`].
    pub fn engine_config(&self) -> EngineConfig {
        self.engine
            .to_engine_config()
            .sid_generator(ClusterSid::new(self.link.node(), self.link.instance()))
            .session_observer(Arc::clone(&self.link) as _)
    }

    /// The Socket.IO options given on the master's command line.
    pub fn socketio_options(&self) -> &SocketIoOptions {
        &self.socketio
    }

    /// A Socket.IO configuration with [`WorkerContext::engine_config`] and
    /// the master's Socket.IO options (connection state recovery with
    /// `--recovery`).
    pub fn socketio_config(&self) -> ServerConfig {
        let config = ServerConfig::default()
            .engine(self.engine_config())
            .serve_client(self.socketio.serve_client);
        match &self.socketio.recovery {
            Some(recovery) => config.recovery(recovery.to_recovery_config()),
            None => config,
        }
    }

    /// A Socket.IO server for this worker, closed cleanly at shutdown. Its
    /// namespaces are joined to every other worker's by the adapter the
    /// cluster was given: the cluster adapter (through the master) unless
    /// the layer above chose another (Redis, with `iocluster --redis`).
    pub fn socketio(&self, config: ServerConfig) -> Server {
        let server = Server::with_adapter(config, Arc::clone(&self.adapter));
        lock(&self.servers).push(server.clone());
        server
    }

    /// Registers a bare engine to close at shutdown.
    pub fn register_engine(&self, engine: Engine) {
        lock(&self.engines).push(engine);
    }

    /// Live sessions of every server and engine of this worker.
    pub(crate) fn session_count(&self) -> usize {
        let servers: usize = lock(&self.servers)
            .iter()
            .map(|s| s.engine().session_count())
            .sum();
        let engines: usize = lock(&self.engines).iter().map(Engine::session_count).sum();
        servers + engines
    }

    /// Closes every session of every server and engine (clients get a close
    /// packet).
    pub(crate) fn close_all(&self) {
        for server in lock(&self.servers).iter() {
            server.close();
        }
        for engine in lock(&self.engines).iter() {
            engine.close_all();
        }
    }
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
