//! A namespace's `ClusterAdapter`: what this server asks of the others
//! (Node's `ClusterAdapter.broadcast`, `fetchSockets`, `serverSideEmit`…),
//! and the collecting of their answers.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use iocluster_socketio::Payload;
use iocluster_socketio::adapter::{
    AckReplies, Adapter, AdapterError, BoxFuture, BroadcastOptions, PersistedSession,
    RestoredSession, SocketInfo,
};
use iocluster_socketio::parser::Packet;
use serde_json::Value;

use super::wire::{self, Item, MessageType, fetched_sockets};
use super::{ClusterCore, Others, Transport};
use crate::adapter::acks::{self, AckResponse};
use crate::adapter::pending::{Request, Response, request_timeout};

/// One namespace's adapter: its core, and what the transport keeps
/// besides.
pub(crate) struct ClusterAdapter<T: Transport> {
    core: Arc<ClusterCore<T>>,
    handle: T::Handle,
}

impl<T: Transport> ClusterAdapter<T> {
    /// The adapter of `core`.
    pub(crate) fn new(core: Arc<ClusterCore<T>>, handle: T::Handle) -> Self {
        ClusterAdapter { core, handle }
    }

    /// Sends `{opts, <key>: <item>}` (joins, leaves, disconnects).
    fn send_with_opts(
        &self,
        kind: MessageType,
        opts: &BroadcastOptions,
        key: &'static str,
        item: Item<'_>,
    ) {
        let flags = crate::wire::adapter_flags(&opts.flags);
        let data = Item::Map(vec![
            ("opts", wire::opts(&opts.rooms, &opts.except, &flags)),
            (key, item),
        ]);
        self.core.send(kind, Some(data), &[]);
    }
}

/// Sends a broadcast of `packet` to the other servers; with `request_id`,
/// one that waits for acks.
fn send_broadcast<T: Transport>(
    core: &ClusterCore<T>,
    packet: &Packet,
    opts: &BroadcastOptions,
    request_id: Option<&str>,
) {
    let data = packet.data.clone().unwrap_or(Value::Array(Vec::new()));
    let flags = crate::wire::adapter_flags(&opts.flags);
    let message = wire::broadcast(&data, request_id, opts, &flags);
    let route = Some((opts, request_id.is_some()));
    let kind = MessageType::Broadcast;
    T::send(core, kind, Some(message), &packet.attachments, route);
}

/// A `BROADCAST_CLIENT_COUNT` or `BROADCAST_ACK` response (its `data`,
/// with its `type`).
fn read_ack_response((data, attachments): Response) -> Option<AckResponse> {
    let kind = data.get("type").and_then(Value::as_u64)?;
    if kind == MessageType::BroadcastClientCount as u64 {
        let count = data.get("clientCount").and_then(Value::as_u64).unwrap_or(0);
        Some(AckResponse::ClientCount(count as usize))
    } else if kind == MessageType::BroadcastAck as u64 {
        let args = data.get("packet").cloned().into_iter().collect();
        Some(AckResponse::Ack(Payload { args, attachments }))
    } else {
        None
    }
}

/// Waits for one response from each of `others` until `timeout`, handing
/// each to `take`.
async fn collect(
    request: &mut Request,
    others: Others,
    timeout: Duration,
    take: impl FnMut(Response),
) -> Result<(), AdapterError> {
    match others {
        Others::Count(expected) => request.collect(expected, timeout, take).await,
        Others::Uids(missing) => collect_from(request, missing, timeout, take).await,
    }
}

/// Waits for one response from each server of `missing` (Node's
/// `missingUids`), handing each to `take`, until `timeout`.
async fn collect_from(
    request: &mut Request,
    mut missing: HashSet<String>,
    timeout: Duration,
    mut take: impl FnMut(Response),
) -> Result<(), AdapterError> {
    let expected = missing.len();
    let deadline = tokio::time::Instant::now() + timeout;
    while !missing.is_empty() {
        match tokio::time::timeout_at(deadline, request.responses.recv()).await {
            Ok(Some(response)) => {
                let uid = response
                    .0
                    .get("uid")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if missing.remove(uid) {
                    take(response);
                }
            }
            Ok(None) | Err(_) => {
                return Err(AdapterError::Timeout {
                    received: expected - missing.len(),
                    expected,
                });
            }
        }
    }
    Ok(())
}

impl<T: Transport> Adapter for ClusterAdapter<T> {
    fn broadcast(&self, packet: Packet, opts: BroadcastOptions) {
        let core = &self.core;
        if !opts.flags.local {
            send_broadcast(core, &packet, &opts, None);
            if T::delivers_on_return(core, &packet, &opts) {
                return;
            }
        }
        core.local.broadcast_packet(&packet, &opts);
    }

    fn broadcast_with_ack(
        &self,
        packet: Packet,
        mut opts: BroadcastOptions,
        timeout: Duration,
    ) -> BoxFuture<'static, AckReplies> {
        let core = &self.core;
        if opts.flags.local {
            let acks = core.local.broadcast_with_ack(packet, &opts);
            return Box::pin(acks.collect(timeout));
        }
        let request = core.pending.register();
        opts.flags.timeout = Some(opts.flags.timeout.unwrap_or(timeout.as_millis() as u64));
        send_broadcast(core, &packet, &opts, Some(&request.id));
        let local = core.local.broadcast_with_ack(packet, &opts);
        let others = T::others(core);
        let servers = async move { Some(others.await.len() + 1) };
        Box::pin(acks::collect(
            servers,
            request,
            local,
            timeout,
            read_ack_response,
        ))
    }

    fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> BoxFuture<'static, Result<Vec<SocketInfo>, AdapterError>> {
        let mut sockets = self.core.local.fetch_sockets(&opts);
        if opts.flags.local {
            return Box::pin(async move { Ok(sockets) });
        }
        let core = Arc::clone(&self.core);
        let timeout = request_timeout(&opts.flags, core.requests_timeout);
        Box::pin(async move {
            let others = T::others(&core).await;
            if others.len() == 0 {
                return Ok(sockets);
            }
            let mut request = core.pending.register();
            let flags = crate::wire::adapter_flags(&opts.flags);
            let data = Item::Map(vec![
                ("opts", wire::opts(&opts.rooms, &opts.except, &flags)),
                ("requestId", Item::Str(&request.id)),
            ]);
            core.send(MessageType::FetchSockets, Some(data), &[]);
            collect(&mut request, others, timeout, |(data, _)| {
                sockets.extend(fetched_sockets(&data));
            })
            .await?;
            Ok(sockets)
        })
    }

    fn add_sockets(&self, opts: BroadcastOptions, rooms: Vec<String>) {
        self.core.local.add_sockets(&opts, &rooms);
        if !opts.flags.local {
            self.send_with_opts(MessageType::SocketsJoin, &opts, "rooms", Item::Strs(&rooms));
        }
    }

    fn del_sockets(&self, opts: BroadcastOptions, rooms: Vec<String>) {
        self.core.local.del_sockets(&opts, &rooms);
        if !opts.flags.local {
            self.send_with_opts(
                MessageType::SocketsLeave,
                &opts,
                "rooms",
                Item::Strs(&rooms),
            );
        }
    }

    fn disconnect_sockets(&self, opts: BroadcastOptions, close: bool) {
        if !opts.flags.local {
            let kind = MessageType::DisconnectSockets;
            self.send_with_opts(kind, &opts, "close", Item::Bool(close));
        }
        self.core.local.disconnect_sockets(&opts, close);
    }

    fn server_side_emit(
        &self,
        event: Payload,
        ack: Option<Duration>,
    ) -> BoxFuture<'static, Result<Vec<Payload>, AdapterError>> {
        let packet = Value::Array(event.args);
        let Some(timeout) = ack else {
            let data = Item::Map(vec![("packet", Item::Json(&packet))]);
            let kind = MessageType::ServerSideEmit;
            self.core.send(kind, Some(data), &event.attachments);
            return Box::pin(async { Ok(Vec::new()) });
        };
        let core = Arc::clone(&self.core);
        let attachments = event.attachments;
        Box::pin(async move {
            let others = T::others(&core).await;
            if others.len() == 0 {
                return Ok(Vec::new());
            }
            let mut request = core.pending.register();
            let data = Item::Map(vec![
                ("requestId", Item::Str(&request.id)),
                ("packet", Item::Json(&packet)),
            ]);
            core.send(MessageType::ServerSideEmit, Some(data), &attachments);
            let mut replies = Vec::with_capacity(others.len());
            collect(&mut request, others, timeout, |(data, attachments)| {
                let args = data.get("packet").cloned().into_iter().collect();
                replies.push(Payload { args, attachments });
            })
            .await?;
            Ok(replies)
        })
    }

    fn server_count(&self) -> BoxFuture<'static, usize> {
        let others = T::others(&self.core);
        Box::pin(async move { others.await.len() + 1 })
    }

    fn track_session(&self, session: &PersistedSession) {
        T::track_session(&self.core, session);
    }

    fn persist_session(&self, session: PersistedSession) {
        T::persist_session(&self.core, session);
    }

    fn forget_session(&self, pid: &str) {
        T::forget_session(&self.core, pid);
    }

    fn restore_session(
        &self,
        pid: String,
        offset: String,
    ) -> BoxFuture<'static, Option<RestoredSession>> {
        T::restore_session(&self.core, pid, offset)
    }

    fn close(&self) {
        if self.core.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        T::close(&self.core, &self.handle);
    }
}
