//! The default adapter: one server, everything local.

use std::sync::Arc;
use std::time::Duration;

use super::{
    AckReplies, Adapter, AdapterError, AdapterFactory, BoxFuture, BroadcastOptions,
    PersistedSession, RecoveryStore, RestoredSession, SocketInfo,
};
use crate::namespace::LocalNamespace;
use crate::parser::Packet;
use crate::payload::Payload;

/// Makes [`InMemoryAdapter`]s.
#[derive(Debug, Default, Clone, Copy)]
pub struct InMemoryAdapterFactory;

impl AdapterFactory for InMemoryAdapterFactory {
    fn create(&self, namespace: LocalNamespace) -> Arc<dyn Adapter> {
        Arc::new(InMemoryAdapter::new(namespace))
    }
}

/// An adapter for a single server: broadcasts and requests reach this
/// server's sockets only; recovery state lives in this process.
#[derive(Debug)]
pub struct InMemoryAdapter {
    local: LocalNamespace,
    recovery: Option<RecoveryStore>,
}

impl InMemoryAdapter {
    /// The adapter of `local`, with a recovery store when the server has
    /// connection state recovery on.
    pub fn new(local: LocalNamespace) -> Self {
        let recovery = local.recovery().map(|config| {
            RecoveryStore::new(config.max_disconnection_duration, config.max_packets)
        });
        InMemoryAdapter { local, recovery }
    }
}

impl Adapter for InMemoryAdapter {
    fn broadcast(&self, mut packet: Packet, opts: BroadcastOptions) {
        if let Some(store) = &self.recovery {
            store.record(&mut packet, &opts);
        }
        self.local.broadcast_packet(&packet, &opts);
    }

    fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
        timeout: Duration,
    ) -> BoxFuture<'static, AckReplies> {
        let acks = self.local.broadcast_with_ack(packet, &opts);
        Box::pin(acks.collect(timeout))
    }

    fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> BoxFuture<'static, Result<Vec<SocketInfo>, AdapterError>> {
        let sockets = self.local.fetch_sockets(&opts);
        Box::pin(async move { Ok(sockets) })
    }

    fn add_sockets(&self, opts: BroadcastOptions, rooms: Vec<String>) {
        self.local.add_sockets(&opts, &rooms);
    }

    fn del_sockets(&self, opts: BroadcastOptions, rooms: Vec<String>) {
        self.local.del_sockets(&opts, &rooms);
    }

    fn disconnect_sockets(&self, opts: BroadcastOptions, close: bool) {
        self.local.disconnect_sockets(&opts, close);
    }

    fn server_side_emit(
        &self,
        _event: Payload,
        _ack: Option<Duration>,
    ) -> BoxFuture<'static, Result<Vec<Payload>, AdapterError>> {
        // No other server: nobody to tell, and no reply to wait for.
        Box::pin(async { Ok(Vec::new()) })
    }

    fn server_count(&self) -> BoxFuture<'static, usize> {
        Box::pin(async { 1 })
    }

    fn persist_session(&self, session: PersistedSession) {
        if let Some(store) = &self.recovery {
            store.persist(session);
        }
    }

    fn restore_session(
        &self,
        pid: String,
        offset: String,
    ) -> BoxFuture<'static, Option<RestoredSession>> {
        let restored = self
            .recovery
            .as_ref()
            .and_then(|store| store.restore(&pid, &offset));
        Box::pin(async move { restored })
    }
}
