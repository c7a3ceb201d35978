//! The Socket.IO server: namespaces over one Engine.IO engine.
//!
//! - `mod.rs`: [`Server`], its namespaces and hooks.
//! - `dynamic.rs`: namespaces made on demand ([`DynamicNamespace`]).
//! - `bridge.rs`: the engine's session events, handed to the clients.

mod bridge;
mod dynamic;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use axum::Router;
use iocluster_engineio::Engine;
use serde_json::Value;

use crate::adapter::{AdapterFactory, InMemoryAdapterFactory};
use crate::client::Client;
use crate::config::ServerConfig;
use crate::namespace::{self, Namespace, SharedHandlers};
use crate::operators::BroadcastOperator;
use crate::payload::Payload;
use crate::reason::DisconnectReason;
use crate::socket::SocketRef;

use self::bridge::EngineBridge;
pub use self::dynamic::DynamicNamespace;
use self::dynamic::DynamicShared;

type NamespaceHook = Arc<dyn Fn(&Namespace) + Send + Sync>;
pub(crate) type ConnectionObserver = Arc<dyn Fn(&SocketRef) + Send + Sync>;

pub(crate) struct ServerShared {
    pub(crate) config: ServerConfig,
    pub(crate) adapter_factory: Arc<dyn AdapterFactory>,
    namespaces: RwLock<HashMap<String, Namespace>>,
    dynamic: RwLock<Vec<DynamicNamespace>>,
    clients: Mutex<HashMap<String, Arc<Client>>>,
    engine: OnceLock<Engine>,
    /// Run for every namespace, existing or created later (Node's
    /// `new_namespace`).
    namespace_hooks: RwLock<Vec<NamespaceHook>>,
    /// Run for every socket of every namespace, before the namespace's own
    /// connection handlers.
    connection_observers: RwLock<Vec<ConnectionObserver>>,
    /// Run for every socket of a session that upgraded to WebSocket.
    pub(super) upgrade_observers: RwLock<Vec<ConnectionObserver>>,
}

impl ServerShared {
    pub(crate) fn client(&self, sid: &str) -> Option<Arc<Client>> {
        self.clients().get(sid).cloned()
    }

    pub(super) fn clients(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Client>>> {
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn connection_observers(&self) -> Vec<ConnectionObserver> {
        self.connection_observers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn create_namespace(self: &Arc<Self>, name: &str, handlers: SharedHandlers) -> Namespace {
        let mut namespaces = self.namespaces.write().unwrap_or_else(|p| p.into_inner());
        if let Some(existing) = namespaces.get(name) {
            return existing.clone();
        }
        let namespace = Namespace::new(name.to_owned(), self, handlers);
        namespaces.insert(name.to_owned(), namespace.clone());
        // Read under the namespaces' lock, which `on_new_namespace` holds
        // while it adds a hook: each hook sees each namespace exactly once.
        let hooks = self
            .namespace_hooks
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        drop(namespaces);
        for hook in hooks {
            hook(&namespace);
        }
        namespace
    }

    /// The namespace a CONNECT names: a static one, or a new child of the
    /// first dynamic namespace whose matcher accepts it.
    pub(crate) fn namespace_for(self: &Arc<Self>, name: &str, auth: &Value) -> Option<Namespace> {
        if let Some(namespace) = self
            .namespaces
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
        {
            return Some(namespace.clone());
        }
        let dynamic = self
            .dynamic
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let parent = dynamic.iter().find(|d| (d.0.matcher)(name, auth))?;
        let child = self.create_namespace(name, Arc::clone(&parent.0.handlers));
        parent
            .0
            .children
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(child.clone());
        Some(child)
    }
}

/// A Socket.IO server.
///
/// ```no_run
/// use iocluster_socketio::{Server, ServerConfig};
///
/// # async fn run() -> std::io::Result<()> {
/// let io = Server::new(ServerConfig::default());
/// io.on_connection(|socket| {
///     socket.on("echo", |_socket, args, ack| {
///         if let Some(ack) = ack {
///             let _ = ack.send(args);
///         }
///     });
/// });
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// iocluster_engineio::serve(listener, io.router()).await
/// # }
/// ```
#[derive(Clone)]
pub struct Server(Arc<ServerShared>);

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.0.config)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A server with the in-memory adapter.
    pub fn new(config: ServerConfig) -> Server {
        Server::with_adapter(config, InMemoryAdapterFactory)
    }

    /// A server whose namespaces use adapters made by `factory`.
    pub fn with_adapter(config: ServerConfig, factory: impl AdapterFactory) -> Server {
        let shared = Arc::new(ServerShared {
            config,
            adapter_factory: Arc::new(factory),
            namespaces: RwLock::new(HashMap::new()),
            dynamic: RwLock::new(Vec::new()),
            clients: Mutex::new(HashMap::new()),
            engine: OnceLock::new(),
            namespace_hooks: RwLock::new(Vec::new()),
            connection_observers: RwLock::new(Vec::new()),
            upgrade_observers: RwLock::new(Vec::new()),
        });
        let engine = Engine::new(
            shared.config.engine.clone(),
            EngineBridge(Arc::downgrade(&shared)),
        );
        let _ = shared.engine.set(engine);
        let server = Server(shared);
        server.of("/");
        server
    }

    /// The namespace `name`, created if needed.
    pub fn of(&self, name: &str) -> Namespace {
        if let Some(namespace) = self
            .0
            .namespaces
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
        {
            return namespace.clone();
        }
        self.0.create_namespace(name, SharedHandlers::default())
    }

    /// Namespaces created on demand for names `matcher` accepts (it sees the
    /// name and the client's auth payload).
    ///
    /// ```no_run
    /// # fn demo(io: iocluster_socketio::Server) {
    /// let dynamic = io.of_dynamic(|name, _auth| {
    ///     name.strip_prefix("/dynamic-").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    /// });
    /// dynamic.on_connection(|socket| { let _ = socket.emit("hello", socket.namespace().name()); });
    /// # }
    /// ```
    pub fn of_dynamic(
        &self,
        matcher: impl Fn(&str, &Value) -> bool + Send + Sync + 'static,
    ) -> DynamicNamespace {
        let dynamic = DynamicNamespace(Arc::new(DynamicShared {
            matcher: Arc::new(matcher),
            handlers: SharedHandlers::default(),
            children: RwLock::new(Vec::new()),
        }));
        self.0
            .dynamic
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(dynamic.clone());
        dynamic
    }

    /// Runs `hook` for every namespace of this server: at once for those
    /// that exist, then for each one created later (static or a child of a
    /// dynamic namespace), once each. Node's `io.on("new_namespace")`, plus
    /// the namespaces already there.
    ///
    /// ```no_run
    /// # fn demo(io: iocluster_socketio::Server) {
    /// io.on_new_namespace(|namespace| println!("namespace {}", namespace.name()));
    /// # }
    /// ```
    pub fn on_new_namespace(&self, hook: impl Fn(&Namespace) + Send + Sync + 'static) {
        let hook: NamespaceHook = Arc::new(hook);
        let existing: Vec<Namespace> = {
            let namespaces = self.0.namespaces.read().unwrap_or_else(|p| p.into_inner());
            self.0
                .namespace_hooks
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .push(Arc::clone(&hook));
            namespaces.values().cloned().collect()
        };
        for namespace in &existing {
            hook(namespace);
        }
    }

    /// Runs `observer` for each socket that connects to any namespace of
    /// this server, before that namespace's connection handlers (as Node's
    /// `nsp.prependListener("connection")` on every namespace): for
    /// instrumentation such as the Admin UI.
    pub fn on_any_connection(&self, observer: impl Fn(&SocketRef) + Send + Sync + 'static) {
        self.0
            .connection_observers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::new(observer));
    }

    /// Runs `observer` for each socket, of any namespace, whose connection
    /// moved from HTTP long-polling to WebSocket, once the upgrade is done
    /// (Node's `socket.conn.on("upgrade")`).
    pub fn on_any_upgrade(&self, observer: impl Fn(&SocketRef) + Send + Sync + 'static) {
        self.0
            .upgrade_observers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::new(observer));
    }

    /// Runs `handler` for each socket connecting to the main namespace.
    pub fn on_connection(&self, handler: impl Fn(&SocketRef) + Send + Sync + 'static) {
        self.of("/").on_connection(handler);
    }

    /// A broadcast to `room` of the main namespace.
    pub fn to(&self, room: impl Into<String>) -> BroadcastOperator {
        self.of("/").to(room)
    }

    /// A broadcast to the main namespace minus `room`.
    pub fn except(&self, room: impl Into<String>) -> BroadcastOperator {
        self.of("/").except(room)
    }

    /// A broadcast to the main namespace.
    pub fn broadcast(&self) -> BroadcastOperator {
        self.of("/").broadcast()
    }

    /// Emits to every socket of the main namespace.
    pub fn emit(&self, event: &str, payload: impl Into<Payload>) {
        self.of("/").emit(event, payload)
    }

    /// The Engine.IO engine.
    pub fn engine(&self) -> &Engine {
        match self.0.engine.get() {
            Some(engine) => engine,
            None => unreachable!("the engine is set at construction"),
        }
    }

    /// An axum router serving Socket.IO at the configured path, and the
    /// client bundle beside it unless `serve_client` is off. It keeps the
    /// server alive for as long as it is served.
    pub fn router(&self) -> Router {
        let mut router = self.engine().router();
        if self.0.config.serve_client {
            router = router.merge(crate::client_bundle::routes(&self.0.config.engine.path));
        }
        router.layer(axum::Extension(self.clone()))
    }

    /// The options.
    pub fn config(&self) -> &ServerConfig {
        &self.0.config
    }

    /// Every namespace this server has now (static ones, and dynamic ones
    /// created so far).
    pub fn namespaces(&self) -> Vec<Namespace> {
        self.0
            .namespaces
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Shuts down: every socket is told (`server shutting down`) and every
    /// session closed with a close packet; adapters are closed.
    pub fn close(&self) {
        let namespaces = self.namespaces();
        for namespace in &namespaces {
            namespace::disconnect_all(namespace, DisconnectReason::ServerShuttingDown);
            namespace.adapter().close();
        }
        self.engine().close_all();
    }
}
