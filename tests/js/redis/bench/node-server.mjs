// The Node side of bench/fanout.mjs: a socket.io 4.8 server with
// @socket.io/redis-adapter and the built-in app's `broadcast` event
// (`broadcast(payload)` emits `broadcast` with the payload to every client,
// then acks), as `iocluster --redis` serves it.
//
//     node bench/node-server.mjs <redis port>
//
// Prints {"port": P} once its adapter is subscribed; ends when stdin closes.
import { createRequire } from "node:module";
import { createServer } from "node:http";

const require = createRequire(import.meta.url);
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");
const { Redis } = require("ioredis");

const options = { host: "127.0.0.1", port: Number(process.argv[2]) };
const pubClient = new Redis(options);
const subClient = new Redis(options);
for (const client of [pubClient, subClient]) client.on("error", () => {});

const io = new Server({ adapter: createAdapter(pubClient, subClient) });
io.on("connection", (socket) => {
  socket.on("broadcast", (...args) => {
    const callback = typeof args[args.length - 1] === "function" ? args.pop() : null;
    io.emit("broadcast", ...args);
    if (callback) callback();
  });
});

const httpServer = createServer();
io.attach(httpServer);
await new Promise((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
// Commands on the subscriber connection run in order: once this one is
// answered, the adapter's subscriptions are in place.
await subClient.subscribe("bench-ready");
process.stdout.write(JSON.stringify({ port: httpServer.address().port }) + "\n");
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
