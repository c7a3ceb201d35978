// The official Socket.IO client through the iocluster master and three
// workers, for every balancing method and every transport setup: the
// scenario of @socket.io/sticky's tests (connect, disconnect and reconnect
// twice, a small and a 1 MB message), with the built-in app's `echo` acks.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { io } from "socket.io-client";

import { startCluster } from "./processes.js";
import { toBuffer, waitFor } from "./support.js";

const WORKERS = 3;
const METHODS = [
  "random",
  "round-robin",
  "least-connection",
  "ip-hash",
  "forwarded-for",
];
const TRANSPORTS = [
  { name: "websocket only", transports: ["websocket"] },
  { name: "polling only", transports: ["polling"] },
  { name: "polling + upgrade", transports: ["polling", "websocket"] },
];
/** The large message, as in @socket.io/sticky's tests. */
const LARGE_BYTES = 1_000_000;
/** Connecting, upgrading and small acks are quick. */
const EVENT_TIMEOUT_MS = 5_000;
/** A 1 MB round trip over polling (base64) in a debug build. */
const LARGE_TIMEOUT_MS = 20_000;
/** The client address the forwarded-for tests claim to come from. */
const FORWARDED_FOR = "203.0.113.7";

/** 1,000,000 bytes, every byte value used, not all the same. */
function largeMessage() {
  const bytes = Buffer.alloc(LARGE_BYTES);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + (i >> 8)) & 0xff;
  return bytes;
}

/**
 * Runs `start` (which opens the connection) and resolves with the pid of
 * the worker that welcomed the socket. Fails on a connect error or a
 * disconnect first.
 */
async function connectTo(socket, start) {
  const welcomed = waitFor(socket, "welcome", EVENT_TIMEOUT_MS, {
    failOn: ["connect_error", "disconnect"],
  });
  start();
  const welcome = await welcomed;
  assert.ok(socket.connected, "welcomed but not connected");
  assert.equal(welcome.id, socket.id, "the welcome names another socket");
  return welcome.worker;
}

/** Resolves once the socket's Engine.IO connection runs over WebSocket. */
async function upgraded(socket) {
  const engine = socket.io.engine;
  if (engine.transport.name === "websocket") return;
  await waitFor(engine, "upgrade", EVENT_TIMEOUT_MS, {
    failOn: ["upgradeError", "close"],
  });
  assert.equal(engine.transport.name, "websocket");
}

for (const method of METHODS) {
  describe(`through the master, balancing with ${method}`, () => {
    let cluster;

    before(async () => {
      cluster = await startCluster({
        balance: method,
        workers: WORKERS,
        args: ["--max-payload", "2000000", "--shutdown-timeout", "2s"],
      });
    });

    after(async () => {
      await cluster?.stop();
    });

    for (const { name, transports } of TRANSPORTS) {
      test(`${name}: connects, reconnects twice, echoes text and 1 MB`, async () => {
        const socket = io(cluster.url, {
          transports,
          autoConnect: false,
          reconnection: false,
          forceNew: true,
          extraHeaders:
            method === "forwarded-for"
              ? { "X-Forwarded-For": FORWARDED_FOR }
              : {},
        });
        try {
          const workers = [];
          const sessions = [];
          workers.push(await connectTo(socket, () => socket.connect()));
          sessions.push(socket.io.engine.id);
          for (let i = 0; i < 2; i++) {
            socket.disconnect();
            workers.push(await connectTo(socket, () => socket.connect()));
            sessions.push(socket.io.engine.id);
          }
          // Each connect is a new Engine.IO session. (Socket ids may repeat
          // through connection state recovery: see the Rust test
          // disconnect_during_connection_handlers_is_not_recovered.)
          assert.equal(
            new Set(sessions).size,
            3,
            `Engine.IO sessions ${sessions}: not 3`,
          );
          const pids = new Set(
            (await cluster.status()).workers.map((w) => w.pid),
          );
          for (const pid of workers) {
            assert.ok(pids.has(pid), `worker ${pid} is not in /status`);
          }
          if (method === "ip-hash" || method === "forwarded-for") {
            // One client address: one worker, every time.
            assert.equal(new Set(workers).size, 1, `workers ${workers}`);
          }
          if (method === "round-robin") {
            // Three sessions in a row: each worker once.
            assert.equal(new Set(workers).size, WORKERS, `workers ${workers}`);
          }
          if (transports.length > 1) await upgraded(socket);

          const hello = await socket
            .timeout(EVENT_TIMEOUT_MS)
            .emitWithAck("echo", "hello");
          assert.equal(hello, "hello");

          const large = largeMessage();
          const echoed = await socket
            .timeout(LARGE_TIMEOUT_MS)
            .emitWithAck("echo", large);
          const bytes = toBuffer(echoed);
          assert.equal(bytes.length, LARGE_BYTES);
          assert.ok(bytes.equals(large), "the 1 MB echo differs");
        } finally {
          socket.disconnect();
        }
      });
    }
  });
}
