// The Node anchor of bench/jitter.mjs: one socket.io 4.8 process with
// connection state recovery (2 minutes, middlewares skipped, as
// `iocluster --recovery`), and the built-in app's `broadcast` event:
// every argument emitted as `broadcast` to every client of `/`.
//
//   node bench/node-recovery-server.mjs PORT

import { createServer } from "node:http";

import { Server } from "socket.io";

const port = Number(process.argv[2] ?? 27400);
const httpServer = createServer();
const io = new Server(httpServer, {
  connectionStateRecovery: { maxDisconnectionDuration: 2 * 60 * 1000, skipMiddlewares: true },
});
io.on("connection", (socket) => {
  socket.on("broadcast", (...args) => {
    const ack = typeof args.at(-1) === "function" ? args.pop() : undefined;
    io.emit("broadcast", ...args);
    ack?.();
  });
});
httpServer.listen(port, "127.0.0.1");
process.on("SIGTERM", () => {
  io.close();
  process.exit(0);
});
