//! The emitter: broadcasts and requests from a process that serves no
//! clients, as @socket.io/redis-emitter publishes them (uid `emitter`).

use bytes::Bytes;
use fred::clients::Client;
use fred::interfaces::PubsubInterface;
use iocluster_socketio::Payload;
use serde_json::Value;

use crate::channels::Channels;
use crate::error::Error;
use crate::wire::{
    self, BroadcastParts, DisconnectRequest, OptsOrder, RequestOpts, RequestType, RoomsRequest,
    ServerSideEmitRequest, WireFlags,
};

/// The uid Node's emitter signs its messages with.
const UID: &str = "emitter";

/// Event names Socket.IO keeps for itself.
const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// Sends to the clients of every Socket.IO server sharing a Redis, Node's
/// or ours, without serving any: `@socket.io/redis-emitter` in Rust.
///
/// ```no_run
/// use iocluster_redis::Emitter;
/// use serde_json::json;
///
/// # async fn run(client: iocluster_redis::fred::clients::Client) -> Result<(), iocluster_redis::Error> {
/// let emitter = Emitter::new(client);
/// emitter.emit("hello", json!({"to": "everyone"})).await?;
/// emitter.of("/admin").to("room1").except("room2").emit("hello", vec![json!(1), json!(2)]).await?;
/// emitter.to("room1").sockets_join(["room2"]).await?;
/// emitter.server_side_emit("ping", ()).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Emitter {
    client: Client,
    key: String,
    nsp: String,
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter")
            .field("key", &self.key)
            .field("nsp", &self.nsp)
            .finish_non_exhaustive()
    }
}

impl Emitter {
    /// An emitter for the main namespace `/`, key prefix `socket.io`.
    pub fn new(client: Client) -> Self {
        Emitter {
            client,
            key: "socket.io".to_owned(),
            nsp: "/".to_owned(),
        }
    }

    /// Uses another key prefix (Node's `key` option).
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = key.into();
        self
    }

    /// The emitter of namespace `nsp` (a missing leading `/` is added).
    pub fn of(&self, nsp: &str) -> Emitter {
        let nsp = if nsp.starts_with('/') {
            nsp.to_owned()
        } else {
            format!("/{nsp}")
        };
        Emitter {
            client: self.client.clone(),
            key: self.key.clone(),
            nsp,
        }
    }

    pub(crate) fn operator(&self) -> EmitterOperator {
        EmitterOperator {
            emitter: self.clone(),
            rooms: Vec::new(),
            except: Vec::new(),
            flags: WireFlags::new(),
        }
    }

    /// Targets `room`.
    pub fn to(&self, room: impl Into<String>) -> EmitterOperator {
        self.operator().to(room)
    }

    /// Same as [`Emitter::to`].
    pub fn within(&self, room: impl Into<String>) -> EmitterOperator {
        self.to(room)
    }

    /// Excludes the sockets in `room`.
    pub fn except(&self, room: impl Into<String>) -> EmitterOperator {
        self.operator().except(room)
    }

    /// Marks the event volatile: clients not ready may miss it.
    pub fn volatile(&self) -> EmitterOperator {
        self.operator().volatile()
    }

    /// Sets the compress flag.
    pub fn compress(&self, compress: bool) -> EmitterOperator {
        self.operator().compress(compress)
    }

    /// Emits `event` to every client of the namespace.
    pub async fn emit(&self, event: &str, payload: impl Into<Payload>) -> Result<(), Error> {
        self.operator().emit(event, payload).await
    }

    /// Makes every socket of the namespace join `rooms`.
    pub async fn sockets_join<I, S>(&self, rooms: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.operator().sockets_join(rooms).await
    }

    /// Makes every socket of the namespace leave `rooms`.
    pub async fn sockets_leave<I, S>(&self, rooms: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.operator().sockets_leave(rooms).await
    }

    /// Disconnects every socket of the namespace (`close`: their whole
    /// connection).
    pub async fn disconnect_sockets(&self, close: bool) -> Result<(), Error> {
        self.operator().disconnect_sockets(close).await
    }

    /// Emits `event` to the namespace's server-side handlers on every
    /// server (no acks, as Node's emitter).
    pub async fn server_side_emit(
        &self,
        event: &str,
        payload: impl Into<Payload>,
    ) -> Result<(), Error> {
        let (channel, message) = self.server_side_emit_message(event, payload.into())?;
        self.publish(channel, message.into()).await
    }

    fn channels(&self) -> Channels {
        Channels::new(&self.key, &self.nsp)
    }

    pub(crate) fn server_side_emit_message(
        &self,
        event: &str,
        payload: Payload,
    ) -> Result<(String, String), Error> {
        let data = wire::json_with_buffers(&event_data(event, payload.args), &payload.attachments);
        let request = ServerSideEmitRequest {
            uid: UID,
            request_id: None,
            kind: RequestType::ServerSideEmit as u8,
            data,
        };
        Ok((self.channels().request, serde_json::to_string(&request)?))
    }

    async fn publish(&self, channel: String, message: Bytes) -> Result<(), Error> {
        let _: i64 = self.client.publish(channel, message).await?;
        Ok(())
    }
}

/// An emit being built: target rooms, excluded rooms, flags.
#[derive(Debug, Clone)]
pub struct EmitterOperator {
    emitter: Emitter,
    rooms: Vec<String>,
    except: Vec<String>,
    flags: WireFlags,
}

/// Adds to an ordered set (Node keeps rooms in `Set`s).
fn insert(set: &mut Vec<String>, room: String) {
    if !set.contains(&room) {
        set.push(room);
    }
}

fn set_flag(flags: &mut WireFlags, name: &'static str, value: Value) {
    match flags.iter_mut().find(|(n, _)| *n == name) {
        Some(flag) => flag.1 = value,
        None => flags.push((name, value)),
    }
}

/// The event name followed by the arguments.
fn event_data(event: &str, args: Vec<Value>) -> Value {
    let mut data = Vec::with_capacity(args.len() + 1);
    data.push(Value::String(event.to_owned()));
    data.extend(args);
    Value::Array(data)
}

impl EmitterOperator {
    /// Also targets `room`.
    pub fn to(mut self, room: impl Into<String>) -> Self {
        insert(&mut self.rooms, room.into());
        self
    }

    /// Same as [`EmitterOperator::to`].
    pub fn within(self, room: impl Into<String>) -> Self {
        self.to(room)
    }

    /// Also excludes the sockets in `room`.
    pub fn except(mut self, room: impl Into<String>) -> Self {
        insert(&mut self.except, room.into());
        self
    }

    /// Marks the event volatile.
    pub fn volatile(mut self) -> Self {
        set_flag(&mut self.flags, "volatile", Value::Bool(true));
        self
    }

    /// Sets the compress flag.
    pub fn compress(mut self, compress: bool) -> Self {
        set_flag(&mut self.flags, "compress", Value::Bool(compress));
        self
    }

    /// Emits `event` with `payload` to the targeted clients of every server.
    pub async fn emit(&self, event: &str, payload: impl Into<Payload>) -> Result<(), Error> {
        let (channel, message) = self.emit_message(event, payload.into())?;
        self.emitter.publish(channel, message.into()).await
    }

    pub(crate) fn emit_message(
        &self,
        event: &str,
        payload: Payload,
    ) -> Result<(String, Vec<u8>), Error> {
        if RESERVED_EVENTS.contains(&event) {
            return Err(Error::ReservedEvent(event.to_owned()));
        }
        let data = event_data(event, payload.args);
        let parts = BroadcastParts {
            nsp: &self.emitter.nsp,
            data: &data,
            attachments: &payload.attachments,
            rooms: &self.rooms,
            except: &self.except,
            flags: &self.flags,
        };
        let message = wire::broadcast_message(UID, &parts, OptsOrder::Emitter);
        Ok((self.emitter.channels().broadcast_to(&self.rooms), message))
    }

    /// Makes the targeted sockets of every server join `rooms`.
    pub async fn sockets_join<I, S>(&self, rooms: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let rooms: Vec<String> = rooms.into_iter().map(Into::into).collect();
        let (channel, message) = self.rooms_message(RequestType::RemoteJoin, &rooms)?;
        self.emitter.publish(channel, message.into()).await
    }

    /// Makes the targeted sockets of every server leave `rooms`.
    pub async fn sockets_leave<I, S>(&self, rooms: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let rooms: Vec<String> = rooms.into_iter().map(Into::into).collect();
        let (channel, message) = self.rooms_message(RequestType::RemoteLeave, &rooms)?;
        self.emitter.publish(channel, message.into()).await
    }

    /// Disconnects the targeted sockets of every server.
    pub async fn disconnect_sockets(&self, close: bool) -> Result<(), Error> {
        let (channel, message) = self.disconnect_message(close)?;
        self.emitter.publish(channel, message.into()).await
    }

    fn opts(&self) -> RequestOpts<'_> {
        RequestOpts {
            rooms: &self.rooms,
            except: &self.except,
        }
    }

    pub(crate) fn rooms_message(
        &self,
        kind: RequestType,
        rooms: &[String],
    ) -> Result<(String, String), Error> {
        let request = RoomsRequest {
            uid: None,
            kind: kind as u8,
            opts: self.opts(),
            rooms,
        };
        Ok((
            self.emitter.channels().request,
            serde_json::to_string(&request)?,
        ))
    }

    pub(crate) fn disconnect_message(&self, close: bool) -> Result<(String, String), Error> {
        let request = DisconnectRequest {
            uid: None,
            kind: RequestType::RemoteDisconnect as u8,
            opts: self.opts(),
            close,
        };
        Ok((
            self.emitter.channels().request,
            serde_json::to_string(&request)?,
        ))
    }
}
