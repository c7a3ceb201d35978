//! Namespaces made on demand, when a CONNECT names one that a matcher
//! accepts (Node's `io.of(/regex/)` and `io.of(fn)`).

use std::future::Future;
use std::sync::{Arc, RwLock};

use serde_json::Value;

use crate::namespace::{self, ConnectError, Namespace, SharedHandlers};
use crate::payload::Payload;
use crate::socket::SocketRef;

/// Whether a namespace name (with the CONNECT's auth) makes a child.
pub(super) type Matcher = Arc<dyn Fn(&str, &Value) -> bool + Send + Sync>;

/// A dynamic namespace's matcher, handlers and children.
pub(super) struct DynamicShared {
    pub(super) matcher: Matcher,
    pub(super) handlers: SharedHandlers,
    pub(super) children: RwLock<Vec<Namespace>>,
}

/// Namespaces created on demand when their name matches (Node's
/// `io.of(/regex/)`): handlers registered here apply to every child.
#[derive(Clone)]
pub struct DynamicNamespace(pub(super) Arc<DynamicShared>);

impl std::fmt::Debug for DynamicNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicNamespace").finish_non_exhaustive()
    }
}

impl DynamicNamespace {
    /// Runs `handler` for each socket connecting to any child.
    pub fn on_connection(&self, handler: impl Fn(&SocketRef) + Send + Sync + 'static) {
        namespace::add_connection(&self.0.handlers, handler);
    }

    /// Adds a middleware to every child.
    pub fn use_middleware<F, Fut>(&self, middleware: F)
    where
        F: Fn(SocketRef) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ConnectError>> + Send + 'static,
    {
        namespace::add_middleware(&self.0.handlers, middleware);
    }

    /// The children created so far.
    pub fn children(&self) -> Vec<Namespace> {
        self.0
            .children
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Emits an event to every socket of every child.
    pub fn emit(&self, event: &str, payload: impl Into<Payload>) {
        let payload = payload.into();
        for child in self.children() {
            child.emit(event, payload.clone());
        }
    }
}
