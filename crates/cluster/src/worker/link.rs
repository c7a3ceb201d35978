//! A worker's link to its master: the one control channel over which the
//! worker reports readiness and sessions, asks for streams to other workers
//! (for requests that belong to their sessions), hears that it must stop,
//! and, when the cluster adapter is in use, exchanges the adapter's relay
//! frames. The link routes what arrives; it knows nothing of envelopes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use iocluster_engineio::{SessionObserver, Sid};
use tokio::net::UnixStream;
use tokio::sync::oneshot;

use crate::adapter::relay::Relay;
use crate::control::{self, Frame, MasterMessage, WorkerMessage};
use crate::metrics::{Metric, label};
use crate::outbox::Outbox;
use crate::report::WorkerReport;
use crate::sid::{InstanceId, NodeId};

/// How long a worker waits for the master to join it to another worker,
/// or to say where another node is.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the master's answer about a node's address is kept.
const PEER_ADDRESS_FOR: Duration = Duration::from_secs(2);

/// What the master asked of the run loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// Close every session and exit.
    Shutdown,
    /// Send the worker's counters, with this request number.
    Report(u64),
    /// Read the TLS certificate again.
    ReloadTls,
}

/// The worker's end of its control channel.
#[derive(Debug)]
pub(crate) struct MasterLink {
    instance: InstanceId,
    node: NodeId,
    /// Peer lookups waiting for the master's answer, by request number.
    lookups: Mutex<HashMap<u64, oneshot::Sender<Option<SocketAddr>>>>,
    /// What the master answered, and when.
    peers_found: Mutex<HashMap<NodeId, (Option<SocketAddr>, std::time::Instant)>>,
    outbox: Outbox,
    /// Connect requests waiting for the master's stream, by request number.
    connects: Mutex<HashMap<u64, oneshot::Sender<Option<UnixStream>>>>,
    next_connect: AtomicU64,
    /// The cluster adapter's relay, when the app uses the cluster adapter.
    relay: OnceLock<Arc<Relay>>,
    /// The last list of live workers the master announced, for a relay
    /// attached after it.
    peers: Mutex<Vec<u32>>,
}

impl MasterLink {
    pub(crate) fn new(node: NodeId, instance: InstanceId, outbox: Outbox) -> Arc<MasterLink> {
        Arc::new(MasterLink {
            instance,
            node,
            lookups: Mutex::new(HashMap::new()),
            peers_found: Mutex::new(HashMap::new()),
            outbox,
            connects: Mutex::new(HashMap::new()),
            next_connect: AtomicU64::new(1),
            relay: OnceLock::new(),
            peers: Mutex::new(Vec::new()),
        })
    }

    /// This worker's instance.
    pub(crate) fn instance(&self) -> InstanceId {
        self.instance
    }

    /// This worker's node.
    pub(crate) fn node(&self) -> NodeId {
        self.node
    }

    /// Where `node` is reachable, as the master knows it (its answers are
    /// kept briefly: a polling session asks on every request).
    pub(crate) async fn peer_address(&self, node: NodeId) -> Option<SocketAddr> {
        let cached = self
            .peers_found
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&node)
            .copied();
        if let Some((addr, at)) = cached {
            if at.elapsed() < PEER_ADDRESS_FOR {
                return addr;
            }
        }
        let request = self.next_connect.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = oneshot::channel();
        self.lookups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(request, sender);
        self.outbox.control(&WorkerMessage::PeerLookup {
            request,
            node: node.0,
        });
        let addr = tokio::time::timeout(CONNECT_TIMEOUT, receiver)
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        self.lookups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&request);
        self.peers_found
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(node, (addr, std::time::Instant::now()));
        addr
    }

    /// The queue of frames to the master.
    pub(crate) fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Tells the master this worker serves connections from now on.
    pub(crate) fn report_ready(&self) {
        self.outbox.control(&WorkerMessage::Ready);
    }

    /// Answers the master's report request `request` with `report`, to
    /// which the link adds its own counters.
    pub(crate) fn report(&self, request: u64, mut report: WorkerReport) {
        report.metrics.push(Metric::counters(
            "iocluster_control_frames_dropped",
            "Control frames dropped because their queue was full, by direction.",
            vec![(vec![label("direction", "to_master")], self.outbox.dropped())],
        ));
        self.outbox
            .control(&WorkerMessage::Report { request, report });
    }

    fn connects(&self) -> MutexGuard<'_, HashMap<u64, oneshot::Sender<Option<UnixStream>>>> {
        self.connects.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn peers(&self) -> MutexGuard<'_, Vec<u32>> {
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Routes the cluster adapter's frames and membership news to `relay`
    /// from now on (once per worker).
    pub(crate) fn attach(&self, relay: Arc<Relay>) {
        let peers = self.peers();
        relay.set_peers(peers.clone());
        let _ = self.relay.set(relay);
    }

    /// Asks the master for a stream to worker `owner`, for a request of one
    /// of its sessions; none when the owner is gone or the master does not
    /// answer in time.
    pub(crate) async fn connect(
        &self,
        owner: InstanceId,
        remote: Option<SocketAddr>,
    ) -> Option<UnixStream> {
        let request = self.next_connect.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = oneshot::channel();
        self.connects().insert(request, sender);
        self.outbox.control(&WorkerMessage::Connect {
            request,
            instance: owner.0,
            remote: remote.map(|r| r.to_string()),
        });
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, receiver)
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        self.connects().remove(&request);
        stream
    }

    /// The master's answer to a connect request: a stream, or none.
    pub(crate) fn connected(&self, request: u64, stream: Option<UnixStream>) {
        if let Some(waiter) = self.connects().remove(&request) {
            let _ = waiter.send(stream);
        }
    }

    /// Handles a frame from the master; what the run loop must do about it.
    pub(crate) fn on_frame(&self, frame: Frame) -> Option<Order> {
        let message = match frame {
            Frame::Control(json) => control::parse::<MasterMessage>(&json)?,
            frame => {
                if let Some(relay) = self.relay.get() {
                    relay.on_frame(frame);
                }
                return None;
            }
        };
        match message {
            MasterMessage::Shutdown => return Some(Order::Shutdown),
            MasterMessage::ReportRequest { request } => return Some(Order::Report(request)),
            MasterMessage::ReloadTls => return Some(Order::ReloadTls),
            MasterMessage::PeerAddress { request, addr } => {
                let waiter = self
                    .lookups
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&request);
                if let Some(waiter) = waiter {
                    let _ = waiter.send(addr.and_then(|a| a.parse().ok()));
                }
            }
            MasterMessage::ConnectFailed { request } => self.connected(request, None),
            MasterMessage::Peers { instances } => {
                let others: Vec<u32> = instances
                    .into_iter()
                    .filter(|&i| i != self.instance.0)
                    .collect();
                let mut peers = self.peers();
                if let Some(relay) = self.relay.get() {
                    relay.set_peers(others.clone());
                }
                *peers = others;
            }
            MasterMessage::WorkerGone { instance } => {
                self.peers().retain(|&i| i != instance);
                if let Some(relay) = self.relay.get() {
                    relay.gone(instance);
                }
            }
        }
        None
    }
}

/// Session reports: the master counts each worker's sessions (for
/// least-connection balancing and status).
impl SessionObserver for MasterLink {
    fn opened(&self, sid: &Sid) {
        self.outbox.control(&WorkerMessage::SessionOpened {
            sid: sid.to_string(),
        });
    }
    fn closed(&self, sid: &Sid) {
        self.outbox.control(&WorkerMessage::SessionClosed {
            sid: sid.to_string(),
        });
    }
}
