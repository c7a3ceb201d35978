// A Node server of a mixed fleet for the Admin UI interop test
// (tests/js/test/admin-ui-node.test.js): socket.io 4.8 with
// @socket.io/redis-adapter, instrumented by the real @socket.io/admin-ui
// (`instrument(io, {auth: {type: "basic", username, password}})`), and an
// `echo`/`welcome` main namespace like iocluster's built-in app.
//
//     node admin-ui-peer.js <redis port> <username> <bcrypt hash>
//
// Prints {"ready": {"port": P}} once listening on 127.0.0.1 with its
// adapter subscribed.
import { createRequire } from "node:module";
import { createServer } from "node:http";

const require = createRequire(import.meta.url);
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");
const { instrument } = require("@socket.io/admin-ui");
const { Redis } = require("ioredis");

const [redisPort, username, password] = process.argv.slice(2);
const pubClient = new Redis({ host: "127.0.0.1", port: Number(redisPort) });
const subClient = pubClient.duplicate();
for (const client of [pubClient, subClient]) client.on("error", () => {});

const io = new Server({ adapter: createAdapter(pubClient, subClient) });
io.on("connection", (socket) => {
  socket.emit("welcome", { id: socket.id, worker: process.pid });
  socket.on("echo", (...args) => {
    const ack = args.pop();
    if (typeof ack === "function") ack(...args);
  });
});
instrument(io, {
  auth: { type: "basic", username, password },
  mode: "development",
  serverId: `node-peer-${process.pid}`,
});

const http = createServer();
io.attach(http);
await Promise.all(
  [pubClient, subClient].map(
    (client) => new Promise((resolve) => (client.status === "ready" ? resolve() : client.once("ready", resolve))),
  ),
);
http.listen(0, "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ ready: { port: http.address().port } }) + "\n");
});
process.on("SIGTERM", () => {
  io.close();
  pubClient.disconnect();
  subClient.disconnect();
  process.exit(0);
});
