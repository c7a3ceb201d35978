//! Namespaces: their sockets, rooms, handlers and middlewares, and the local
//! operations adapters call.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock, Weak};
use std::time::Duration;

use serde_json::Value;

use crate::adapter::{Adapter, BoxFuture};
use crate::config::RecoveryConfig;
use crate::operators::BroadcastOperator;
use crate::payload::Payload;
use crate::reason::DisconnectReason;
use crate::server::ServerShared;
use crate::socket::SocketRef;

mod local;

pub use local::LocalNamespace;

/// A refusal by a middleware: the client gets a CONNECT_ERROR with
/// `{"message": message, "data": data}`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ConnectError {
    /// The message (`err.message` in the client).
    pub message: String,
    /// Extra data (`err.data` in the client).
    pub data: Option<Value>,
}

impl ConnectError {
    /// A refusal with a message.
    pub fn new(message: impl Into<String>) -> Self {
        ConnectError {
            message: message.into(),
            data: None,
        }
    }

    /// Adds data for the client.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
}

/// A change in a namespace's rooms on this server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomEvent {
    /// A room got its first socket.
    Create(String),
    /// A room lost its last socket.
    Delete(String),
    /// A socket joined a room.
    Join {
        /// The room.
        room: String,
        /// The socket id.
        sid: String,
    },
    /// A socket left a room.
    Leave {
        /// The room.
        room: String,
        /// The socket id.
        sid: String,
    },
}

/// Replies to a server-side event that asked for an ack.
pub type ServerAck = Box<dyn FnOnce(Payload) + Send>;

type ConnectionHandler = Arc<dyn Fn(&SocketRef) + Send + Sync>;
type Middleware =
    Arc<dyn Fn(SocketRef) -> BoxFuture<'static, Result<(), ConnectError>> + Send + Sync>;
type ServerEventHandler = Arc<dyn Fn(Payload, Option<ServerAck>) + Send + Sync>;
type RoomEventHandler = Arc<dyn Fn(&RoomEvent) + Send + Sync>;

/// The handlers of a namespace; shared by the children of a dynamic one.
#[derive(Default)]
pub(crate) struct Handlers {
    connection: Vec<ConnectionHandler>,
    middlewares: Vec<Middleware>,
    server_events: HashMap<String, ServerEventHandler>,
    room_events: Vec<RoomEventHandler>,
}

pub(crate) type SharedHandlers = Arc<RwLock<Handlers>>;

/// Registers handlers; implemented by [`Namespace`] and
/// [`DynamicNamespace`](crate::DynamicNamespace).
pub(crate) fn add_connection(
    handlers: &SharedHandlers,
    handler: impl Fn(&SocketRef) + Send + Sync + 'static,
) {
    write(handlers).connection.push(Arc::new(handler));
}

pub(crate) fn add_middleware<F, Fut>(handlers: &SharedHandlers, middleware: F)
where
    F: Fn(SocketRef) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), ConnectError>> + Send + 'static,
{
    write(handlers)
        .middlewares
        .push(Arc::new(move |socket| Box::pin(middleware(socket))));
}

fn write(handlers: &SharedHandlers) -> std::sync::RwLockWriteGuard<'_, Handlers> {
    handlers.write().unwrap_or_else(|p| p.into_inner())
}

fn read(handlers: &SharedHandlers) -> std::sync::RwLockReadGuard<'_, Handlers> {
    handlers.read().unwrap_or_else(|p| p.into_inner())
}

pub(crate) struct NamespaceShared {
    name: String,
    server: Weak<ServerShared>,
    handlers: SharedHandlers,
    sockets: RwLock<HashMap<Arc<str>, SocketRef>>,
    rooms: RwLock<HashMap<String, HashSet<Arc<str>>>>,
    adapter: OnceLock<Arc<dyn Adapter>>,
    /// Room observers of this namespace only (not shared with the other
    /// children of a dynamic namespace, unlike `handlers`): the adapter's.
    local_room_events: RwLock<Vec<RoomEventHandler>>,
    ack_ids: AtomicU64,
    recovery: Option<RecoveryConfig>,
}

/// A namespace (`/`, `/admin`, …): handlers, rooms, and broadcasts to its
/// sockets on every server.
#[derive(Clone)]
pub struct Namespace(Arc<NamespaceShared>);

impl std::fmt::Debug for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespace")
            .field("name", &self.0.name)
            .finish_non_exhaustive()
    }
}

impl Namespace {
    pub(crate) fn new(
        name: String,
        server: &Arc<ServerShared>,
        handlers: SharedHandlers,
    ) -> Namespace {
        let namespace = Namespace(Arc::new(NamespaceShared {
            name,
            server: Arc::downgrade(server),
            handlers,
            sockets: RwLock::new(HashMap::new()),
            rooms: RwLock::new(HashMap::new()),
            adapter: OnceLock::new(),
            local_room_events: RwLock::new(Vec::new()),
            ack_ids: AtomicU64::new(0),
            recovery: server.config.recovery.clone(),
        }));
        let adapter = server.adapter_factory.create(namespace.local_handle());
        let _ = namespace.0.adapter.set(adapter);
        namespace
    }

    /// The namespace name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// Runs `handler` for each socket that connects, after the middlewares
    /// and after the client was told it is connected.
    pub fn on_connection(&self, handler: impl Fn(&SocketRef) + Send + Sync + 'static) {
        add_connection(&self.0.handlers, handler);
    }

    /// Adds a middleware: it runs for each connecting socket, in order, and
    /// may refuse the connection.
    ///
    /// ```no_run
    /// # fn demo(io: iocluster_socketio::Server) {
    /// use iocluster_socketio::ConnectError;
    /// io.of("/").use_middleware(|socket| async move {
    ///     match socket.auth().get("token") {
    ///         Some(_) => Ok(()),
    ///         None => Err(ConnectError::new("not authorized")),
    ///     }
    /// });
    /// # }
    /// ```
    pub fn use_middleware<F, Fut>(&self, middleware: F)
    where
        F: Fn(SocketRef) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ConnectError>> + Send + 'static,
    {
        add_middleware(&self.0.handlers, middleware);
    }

    /// Handles an event sent by another server with
    /// [`server_side_emit`](Namespace::server_side_emit).
    pub fn on_server_event(
        &self,
        event: &str,
        handler: impl Fn(Payload, Option<ServerAck>) + Send + Sync + 'static,
    ) {
        write(&self.0.handlers)
            .server_events
            .insert(event.to_owned(), Arc::new(handler));
    }

    /// Sees room changes on this server (create, delete, join, leave).
    pub fn on_room_event(&self, handler: impl Fn(&RoomEvent) + Send + Sync + 'static) {
        write(&self.0.handlers).room_events.push(Arc::new(handler));
    }

    /// A broadcast to every socket of the namespace.
    pub fn broadcast(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.clone())
    }

    /// A broadcast to `room`.
    pub fn to(&self, room: impl Into<String>) -> BroadcastOperator {
        self.broadcast().to(room)
    }

    /// Same as [`Namespace::to`].
    pub fn within(&self, room: impl Into<String>) -> BroadcastOperator {
        self.to(room)
    }

    /// A broadcast to every socket not in `room`.
    pub fn except(&self, room: impl Into<String>) -> BroadcastOperator {
        self.broadcast().except(room)
    }

    /// A broadcast to this server's sockets only.
    pub fn local(&self) -> BroadcastOperator {
        self.broadcast().local()
    }

    /// Emits an event to every socket of the namespace, on every server.
    pub fn emit(&self, event: &str, payload: impl Into<Payload>) {
        self.broadcast().emit(event, payload)
    }

    /// Emits an event to the namespace on every other server.
    pub fn server_side_emit(&self, event: &str, payload: impl Into<Payload>) {
        let adapter = self.adapter();
        let future = adapter.server_side_emit(server_event(event, payload.into()), None);
        tokio::spawn(future);
    }

    /// Emits an event to the namespace on every other server and collects
    /// each server's reply.
    pub async fn server_side_emit_with_ack(
        &self,
        event: &str,
        payload: impl Into<Payload>,
        timeout: Duration,
    ) -> Result<Vec<Payload>, crate::adapter::AdapterError> {
        crate::stats::timed(
            self.adapter()
                .server_side_emit(server_event(event, payload.into()), Some(timeout)),
        )
        .await
    }

    /// How many servers serve this namespace.
    pub async fn server_count(&self) -> usize {
        crate::stats::timed(self.adapter().server_count()).await
    }

    /// This server's sockets.
    pub fn sockets(&self) -> Vec<SocketRef> {
        self.0
            .sockets
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// This server's socket with this id.
    pub fn socket(&self, id: &str) -> Option<SocketRef> {
        self.0
            .sockets
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    /// The adapter.
    pub fn adapter(&self) -> Arc<dyn Adapter> {
        match self.0.adapter.get() {
            Some(adapter) => Arc::clone(adapter),
            None => unreachable!("the adapter is set when the namespace is created"),
        }
    }

    /// The operations adapters perform on this server's sockets.
    pub fn local_handle(&self) -> LocalNamespace {
        LocalNamespace(Arc::downgrade(&self.0))
    }

    pub(crate) fn recovery(&self) -> Option<&RecoveryConfig> {
        self.0.recovery.as_ref()
    }

    pub(crate) fn server(&self) -> Option<Arc<ServerShared>> {
        self.0.server.upgrade()
    }

    pub(crate) fn next_ack_id(&self) -> u64 {
        self.0.ack_ids.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn middlewares(&self) -> Vec<Middleware> {
        read(&self.0.handlers).middlewares.clone()
    }

    pub(crate) fn connection_handlers(&self) -> Vec<ConnectionHandler> {
        read(&self.0.handlers).connection.clone()
    }

    /// Adds a connected socket (and its own room).
    pub(crate) fn insert(&self, socket: &SocketRef) {
        self.0
            .sockets
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(Arc::clone(socket.id_arc()), Arc::clone(socket));
        self.local_handle().join(socket, &[socket.id().to_owned()]);
    }
}

/// A server-side event: the event name, then the arguments.
fn server_event(event: &str, mut payload: Payload) -> Payload {
    payload.args.insert(0, Value::String(event.to_owned()));
    payload
}

/// Disconnects every socket of a namespace, for shutdown.
pub(crate) fn disconnect_all(namespace: &Namespace, reason: DisconnectReason) {
    for socket in namespace.sockets() {
        socket.on_close(reason);
    }
}
