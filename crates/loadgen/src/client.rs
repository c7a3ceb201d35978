//! A Socket.IO client on the main namespace, over either transport: the
//! states a load client goes through (open, connect, upgrade, exchange,
//! close), each step bounded by the connector's timeout.

use std::sync::Arc;

use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::error::ClientError;
use crate::net::Connector;
use crate::packet::SocketPacket;
use crate::polling::PollingTransport;
use crate::target::Target;
use crate::websocket::WebSocketTransport;

/// Which Engine.IO transport a client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// WebSocket from the start (`transport=websocket`).
    Websocket,
    /// HTTP long-polling only.
    Polling,
    /// Long-polling, upgraded to WebSocket once connected (what browsers
    /// do): the session then runs over a WebSocket opened by a second
    /// request, which a balancer without stickiness may send to another
    /// node than the handshake.
    Upgrade,
}

/// The transport a session is on now.
#[derive(Debug)]
pub enum Transport {
    /// WebSocket.
    WebSocket(WebSocketTransport),
    /// Long-polling.
    Polling(PollingTransport),
}

impl Transport {
    /// Opens a new Engine.IO session over `kind`.
    pub async fn open(
        connector: &Arc<Connector>,
        target: &Target,
        kind: TransportKind,
    ) -> Result<Transport, ClientError> {
        Ok(match kind {
            TransportKind::Websocket => {
                Transport::WebSocket(WebSocketTransport::open(connector, target).await?)
            }
            TransportKind::Polling | TransportKind::Upgrade => {
                Transport::Polling(PollingTransport::open(Arc::clone(connector), target).await?)
            }
        })
    }

    /// Sends one Engine.IO packet.
    pub async fn send(&mut self, packet: String) -> Result<(), ClientError> {
        match self {
            Transport::WebSocket(ws) => ws.send_owned(packet).await,
            Transport::Polling(polling) => polling.send(&packet).await,
        }
    }

    /// The next message packet (`4...`), within the timeout.
    pub async fn recv(&mut self) -> Result<Utf8Bytes, ClientError> {
        match self {
            Transport::WebSocket(ws) => ws.recv().await,
            Transport::Polling(polling) => polling.recv().await,
        }
    }

    /// Pings (`2`) answered so far.
    pub fn pings_answered(&self) -> u64 {
        match self {
            Transport::WebSocket(ws) => ws.pings_answered(),
            Transport::Polling(polling) => polling.pings_answered(),
        }
    }

    /// Closes the session and its connection. Over polling the close is
    /// answered, and an answer other than the expected one is the error;
    /// over WebSocket errors are ignored (the server may close first).
    pub async fn close(self) -> Result<(), ClientError> {
        match self {
            Transport::WebSocket(ws) => {
                ws.close().await;
                Ok(())
            }
            Transport::Polling(polling) => polling.close().await,
        }
    }
}

/// A Socket.IO client connected to the main namespace `/`.
#[derive(Debug)]
pub struct SocketClient {
    transport: Transport,
    next_ack: u64,
}

impl SocketClient {
    /// Opens a session over `kind` and connects to `/`.
    pub async fn connect(
        connector: &Arc<Connector>,
        target: &Target,
        kind: TransportKind,
    ) -> Result<SocketClient, ClientError> {
        // Every connection of the session from one source address.
        let connector = Arc::new(connector.pinned());
        let transport = Transport::open(&connector, target, kind).await?;
        let client = SocketClient::join_main_namespace(transport).await?;
        match kind {
            TransportKind::Upgrade => client.upgrade(&connector, target).await,
            TransportKind::Websocket | TransportKind::Polling => Ok(client),
        }
    }

    /// Sends `40` on `transport` and waits for the CONNECT (`40{"sid":..}`);
    /// events that come first are skipped, a CONNECT_ERROR is an error.
    pub async fn join_main_namespace(
        mut transport: Transport,
    ) -> Result<SocketClient, ClientError> {
        transport.send("40".to_owned()).await?;
        loop {
            let message = transport.recv().await?;
            match SocketPacket::parse(socket_part(&message))? {
                SocketPacket::Connect { namespace: "/", .. } => break,
                SocketPacket::Event { .. } => {}
                _ => return Err(ClientError::unexpected(&message)),
            }
        }
        Ok(SocketClient {
            transport,
            next_ack: 0,
        })
    }

    /// Moves a polling session to WebSocket (the browser's upgrade); a
    /// WebSocket client stays as it is.
    pub async fn upgrade(
        self,
        connector: &Connector,
        target: &Target,
    ) -> Result<SocketClient, ClientError> {
        let Transport::Polling(polling) = self.transport else {
            return Ok(self);
        };
        let ws = WebSocketTransport::upgrade(connector, target, polling.sid()).await?;
        Ok(SocketClient {
            transport: Transport::WebSocket(ws),
            next_ack: self.next_ack,
        })
    }

    /// A new ack id (0, 1, 2, ...).
    pub fn next_ack_id(&mut self) -> u64 {
        let id = self.next_ack;
        self.next_ack += 1;
        id
    }

    /// Sends one Engine.IO packet (a Socket.IO packet is `4` + its text).
    pub async fn send(&mut self, packet: String) -> Result<(), ClientError> {
        self.transport.send(packet).await
    }

    /// The next message packet (`4...`), within the timeout.
    pub async fn recv(&mut self) -> Result<Utf8Bytes, ClientError> {
        self.transport.recv().await
    }

    /// The next message packet, or `None` at `deadline`. Over polling a
    /// read is not cut at the deadline but bounded by the timeout.
    pub async fn recv_until(
        &mut self,
        deadline: Instant,
    ) -> Result<Option<Utf8Bytes>, ClientError> {
        match &mut self.transport {
            Transport::WebSocket(ws) => ws.recv_until(deadline).await,
            Transport::Polling(polling) => polling.recv().await.map(Some),
        }
    }

    /// Waits for the ack `id`, skipping events; returns the ack's data
    /// (the JSON array) as text.
    pub async fn wait_ack(&mut self, id: u64) -> Result<Utf8Bytes, ClientError> {
        loop {
            let message = self.recv().await?;
            match SocketPacket::parse(socket_part(&message))? {
                SocketPacket::Ack { id: got, .. } if got == id => return Ok(message),
                SocketPacket::Event { .. } => {}
                SocketPacket::Disconnect { .. } => {
                    return Err(ClientError::Closed("the server disconnected the socket"));
                }
                _ => return Err(ClientError::unexpected(&message)),
            }
        }
    }

    /// Pings (`2`) answered so far.
    pub fn pings_answered(&self) -> u64 {
        self.transport.pings_answered()
    }

    /// Closes the session (see [`Transport::close`]).
    pub async fn close(self) -> Result<(), ClientError> {
        self.transport.close().await
    }
}

/// The Socket.IO part of a message packet (`4...` without the `4`).
pub fn socket_part(message: &str) -> &str {
    message.get(1..).unwrap_or("")
}

/// The data of ack packet `message` (`43<id>[...]`): the JSON array.
pub fn ack_data(message: &str) -> Option<&str> {
    match SocketPacket::parse(socket_part(message)) {
        Ok(SocketPacket::Ack { data, .. }) => Some(data),
        _ => None,
    }
}
