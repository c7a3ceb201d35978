// A Node peer for the interop tests of crates/redis, driven over stdin and
// stdout with one JSON object per line.
//
//     node peer.js <redis port> [cluster | sharded | sharded-cluster | streams] [subscription mode]
//
// With `cluster`, the port is one node of a Redis Cluster (ioredis
// `Cluster` clients). With `sharded`, the adapter is `createShardedAdapter`
// (Redis 7 sharded pub/sub) with the given `subscriptionMode` (Node's
// default, "dynamic", when none); `sharded-cluster` is that on a Redis
// Cluster (ioredis `Cluster` clients with `shardedSubscribers`, as the
// adapter's README says). With `streams`, the adapter is
// @socket.io/redis-streams-adapter (one ioredis client, the stream
// `socket.io`) and the server has connection state recovery on (Node's
// defaults: 2 minutes, skipMiddlewares).
//
// It runs a socket.io 4.8 server with @socket.io/redis-adapter on
// 127.0.0.1 (port chosen by the system), and socket.io-client sockets to any
// server the test names. It prints {"ready": {"port": P}} once its adapter
// is subscribed, then answers each command {"id", "cmd", ...} with
// {"id", "result"} or {"id", "error"}, and reports what happens as
// {"event": ...} lines. Binary values are {"$bin": "<hex>"} both ways.
import { createRequire } from "node:module";
import { createServer } from "node:http";
import { createInterface } from "node:readline";

const require = createRequire(import.meta.url);
const { Server } = require("socket.io");
const { io: connect } = require("socket.io-client");
const { createAdapter, createShardedAdapter } = require("@socket.io/redis-adapter");
const { createAdapter: createStreamsAdapter } = require("@socket.io/redis-streams-adapter");
const { Emitter } = require("@socket.io/redis-emitter");
const { Redis, Cluster } = require("ioredis");

const redisPort = Number(process.argv[2]);
const setup = process.argv[3] ?? "";
const sharded = setup.startsWith("sharded");
const streams = setup === "streams";
const clustered = setup === "cluster" || setup === "sharded-cluster";
const subscriptionMode = process.argv[4] ?? "dynamic";
const options = { host: "127.0.0.1", port: redisPort, lazyConnect: false };
const newClient = () =>
  clustered
    ? new Cluster([{ host: "127.0.0.1", port: redisPort }], { shardedSubscribers: sharded })
    : new Redis(options);
const pubClient = newClient();
const subClient = newClient();
for (const client of [pubClient, subClient]) client.on("error", () => {});

/** `PUBSUB SHARDNUMSUB channel`, summed over a cluster's nodes. */
async function shardNumsub(channel) {
  const nodes = clustered ? pubClient.nodes("master") : [pubClient];
  const counts = await Promise.all(nodes.map((node) => node.call("PUBSUB", "SHARDNUMSUB", channel)));
  return counts.reduce((sum, reply) => sum + Number(reply[1]), 0);
}

const send = (message) => process.stdout.write(JSON.stringify(message) + "\n");

/** {"$bin": hex} → Buffer, recursively. */
function fromJson(value) {
  if (Array.isArray(value)) return value.map(fromJson);
  if (value && typeof value === "object") {
    if (typeof value.$bin === "string") return Buffer.from(value.$bin, "hex");
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fromJson(v)]));
  }
  return value;
}

/** Buffer → {"$bin": hex}, recursively. */
function toJson(value) {
  if (Buffer.isBuffer(value) || value instanceof ArrayBuffer || ArrayBuffer.isView(value)) {
    return { $bin: Buffer.from(value).toString("hex") };
  }
  if (Array.isArray(value)) return value.map(toJson);
  if (value instanceof Error) return { error: value.message };
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJson(v)]));
  }
  return value === undefined ? null : value;
}

const adapter = streams
  ? createStreamsAdapter(pubClient)
  : sharded
    ? createShardedAdapter(pubClient, subClient, { subscriptionMode })
    : createAdapter(pubClient, subClient);
const io = new Server(streams ? { adapter, connectionStateRecovery: {} } : { adapter });
// Sockets as the server sees them: whether each was recovered.
io.on("connection", (socket) => send({ event: "server-connection", id: socket.id, recovered: socket.recovered }));
io.of("/admin"); // a second namespace, with its own adapter
io.on("connection", (socket) => {
  socket.data = { server: "node" };
  socket.on("join", (room, callback) => {
    socket.join(room);
    if (typeof callback === "function") callback("joined");
  });
});
// Server-side events from other servers.
for (const name of ["hello", "ping-server"]) {
  io.on(name, (...args) => {
    const callback = typeof args[args.length - 1] === "function" ? args.pop() : null;
    send({ event: "server-event", name, args: toJson(args) });
    if (callback) callback("node-pong");
  });
}

const clients = new Map();

function operator(target, rooms = [], except = []) {
  let op = target;
  for (const room of rooms) op = op.to(room);
  for (const room of except) op = op.except(room);
  return op;
}

const commands = {
  async connect({ url, name, nsp = "/" }) {
    const socket = connect(url + nsp, { transports: ["websocket"], forceNew: true, reconnection: false });
    clients.set(name, socket);
    socket.onAny((ev, ...args) => {
      const callback = typeof args[args.length - 1] === "function" ? args.pop() : null;
      send({ event: "client", name, ev, args: toJson(args) });
      if (callback) callback(`${name}-ack`);
    });
    socket.on("disconnect", (reason) => send({ event: "client-disconnect", name, reason }));
    await new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("connect_error", reject);
    });
    return { id: socket.id };
  },
  async clientEmitWithAck({ name, ev, args = [] }) {
    return toJson(await clients.get(name).timeout(5000).emitWithAck(ev, ...fromJson(args)));
  },
  async emit({ rooms, except, ev, args = [], volatile = false }) {
    let op = operator(io, rooms, except);
    if (volatile) op = op.volatile;
    op.emit(ev, ...fromJson(args));
    return true;
  },
  async emitWithAck({ rooms, except, ev, args = [], timeout = 3000 }) {
    return toJson(await operator(io, rooms, except).timeout(timeout).emitWithAck(ev, ...fromJson(args)));
  },
  async fetchSockets({ rooms, except, timeout }) {
    let op = operator(io, rooms, except);
    if (timeout !== undefined) op = op.timeout(timeout);
    const sockets = await op.fetchSockets();
    return sockets.map((s) => ({ id: s.id, rooms: [...s.rooms], data: s.data, handshake: s.handshake }));
  },
  async socketsJoin({ rooms, except, join }) {
    operator(io, rooms, except).socketsJoin(join);
    return true;
  },
  async disconnectSockets({ rooms, except, close = false }) {
    operator(io, rooms, except).disconnectSockets(close);
    return true;
  },
  async serverSideEmit({ ev, args = [], ack = false }) {
    if (!ack) {
      io.serverSideEmit(ev, ...fromJson(args));
      return true;
    }
    return toJson(await io.serverSideEmitWithAck(ev, ...fromJson(args)));
  },
  async allRooms() {
    return [...(await io.of("/").adapter.allRooms())].sort();
  },
  async serverCount() {
    return await io.of("/").adapter.serverCount();
  },
  async shardNumsub({ channel }) {
    return await shardNumsub(channel);
  },
  async uid() {
    return io.of("/").adapter.uid;
  },
  async emitter({ nsp = "/", rooms, except, ev, args = [] }) {
    operator(new Emitter(pubClient).of(nsp), rooms, except).emit(ev, ...fromJson(args));
    return true;
  },
};

createInterface({ input: process.stdin }).on("line", async (line) => {
  let request;
  try {
    request = JSON.parse(line);
  } catch {
    return;
  }
  try {
    const result = await commands[request.cmd](request);
    send({ id: request.id, result });
  } catch (error) {
    send({ id: request.id, error: error?.message ?? String(error) });
  }
});
// The test closing stdin (or dying) ends the peer.
process.stdin.on("end", () => process.exit(0));

const httpServer = createServer();
io.attach(httpServer);
await new Promise((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
const { port } = httpServer.address();
if (streams) {
  // The adapter's first XREAD went out on pubClient when the main
  // namespace was made: once a command sent after it is answered, the
  // adapter reads the stream.
  await pubClient.ping();
} else if (sharded) {
  // The adapter's SSUBSCRIBEs go to the shards of their channels: ready
  // once Redis counts a subscriber on its own response channel, the last
  // one subscribed.
  const responseChannel = `socket.io#/#${io.of("/").adapter.uid}#`;
  while ((await shardNumsub(responseChannel).catch(() => 0)) < 1) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
} else {
  // Commands on the subscriber connection run in order: once this one is
  // answered, the adapter's own subscriptions are in place.
  await subClient.subscribe("iocluster-peer-ready");
}
send({ ready: { port } });
