// The Node peer of bench/compare: Node's `cluster` with one worker per
// requested core, @socket.io/sticky in the primary (least-connection), and
// @socket.io/cluster-adapter joining the workers, serving the same events as
// iocluster's built-in app:
//   echo(...args, ack)       acks its arguments back;
//   broadcast(payload, ack)  emits `broadcast` with the payload to every client, then acks.
//
// Usage: node cluster.js PORT WORKERS   (listens on 127.0.0.1)
"use strict";

const cluster = require("node:cluster");
const http = require("node:http");
const { Server } = require("socket.io");
const { setupMaster, setupWorker } = require("@socket.io/sticky");
const { createAdapter, setupPrimary } = require("@socket.io/cluster-adapter");

const port = Number(process.argv[2] || 3000);
const workers = Number(process.argv[3] || 2);

if (cluster.isPrimary) {
  const httpServer = http.createServer();
  setupMaster(httpServer, { loadBalancingMethod: "least-connection" });
  setupPrimary();
  // Needed by the cluster adapter for binary payloads (Buffers over IPC).
  cluster.setupPrimary({ serialization: "advanced" });
  httpServer.listen(port, "127.0.0.1");
  for (let i = 0; i < workers; i++) {
    cluster.fork();
  }
  let stopping = false;
  const stop = () => {
    stopping = true;
    for (const worker of Object.values(cluster.workers)) {
      worker.process.kill("SIGTERM");
    }
    setTimeout(() => process.exit(0), 2000).unref();
    httpServer.close();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  cluster.on("exit", (worker, code, signal) => {
    if (!stopping) {
      console.error(`worker ${worker.process.pid} died (${signal || code})`);
    }
    if (Object.keys(cluster.workers).length === 0 && stopping) {
      process.exit(0);
    }
  });
} else {
  const httpServer = http.createServer();
  const io = new Server(httpServer);
  io.adapter(createAdapter());
  setupWorker(io);
  io.on("connection", (socket) => {
    socket.on("echo", (...args) => {
      const ack = args.pop();
      if (typeof ack === "function") {
        ack(...args);
      }
    });
    socket.on("broadcast", (...args) => {
      const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
      io.emit("broadcast", ...args);
      if (ack) {
        ack();
      }
    });
  });
  process.on("SIGTERM", () => process.exit(0));
}
